// Acta photos for tests and benchmarks. The real, published acta scans live in
// `../shared/data/actas/images/` beside the repository (DESIGN §7): CI always has them, a user's
// fresh clone does not. When they are present they are used; when absent, tests run on synthetic
// JPEG-structured files — except under CI=true, where a missing folder is an error, so that CI
// can never silently test less than it should.
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root (this file is client-sdk/{src,dist}/testing/acta-photos.*). */
export const REPO_ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..", "..");
export const SHARED_ACTAS_DIR = resolve(REPO_ROOT, "..", "shared", "data", "actas", "images");

export interface ActaPhoto {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** Text planted in the photo's EXIF segment (synthetic photos only): scans look for it. */
  readonly exifMarker?: string;
}

/** File names of the real acta scans, sorted; empty when the folder is absent (throws under CI). */
export function realActaNames(): string[] {
  if (!existsSync(SHARED_ACTAS_DIR)) {
    if (process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false") {
      throw new Error(`CI is set but the real acta photos are missing: expected ${SHARED_ACTAS_DIR}`);
    }
    return [];
  }
  return readdirSync(SHARED_ACTAS_DIR)
    .filter((name) => /\.(jpe?g|png)$/i.test(name))
    .sort();
}

/**
 * A JPEG-structured stand-in for a photographed acta: SOI, an APP1 "Exif" segment carrying
 * `exifMarker`, a comment, `size` bytes of incompressible "scan data", EOI.
 */
export function syntheticActa(size: number, exifMarker = `EXIF-MARKER-${randomBytes(8).toString("hex")}`): ActaPhoto {
  const exif = Buffer.concat([
    Buffer.from("Exif\0\0", "latin1"),
    Buffer.from(`Make=Testigo;Note=${exifMarker}`, "utf8"),
  ]);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1]), u16(exif.length + 2), exif]);
  const comment = Buffer.from("synthetic acta for tests", "latin1");
  const com = Buffer.concat([Buffer.from([0xff, 0xfe]), u16(comment.length + 2), comment]);
  const scan = randomBytes(Math.max(0, size - 4 - app1.length - com.length));
  const bytes = Buffer.concat([Buffer.from([0xff, 0xd8]), app1, com, scan, Buffer.from([0xff, 0xd9])]);
  return { name: `synthetic-${exifMarker}.jpg`, bytes: new Uint8Array(bytes), exifMarker };
}

/** `count` acta photos: the real scans (cycled) when present, synthetic ones of `syntheticSize` bytes otherwise. */
export function actaPhotos(count: number, syntheticSize = 300_000): ActaPhoto[] {
  const names = realActaNames();
  return Array.from({ length: count }, (_, i) => {
    const name = names[i % Math.max(1, names.length)];
    if (name === undefined) return syntheticActa(syntheticSize);
    return { name, bytes: new Uint8Array(readFileSync(join(SHARED_ACTAS_DIR, name))) };
  });
}

function u16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}
