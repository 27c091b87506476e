// Acta photos for the end-to-end tests: the real scans in ../shared/data/actas/images/ (resolved
// from the repository's root; required under CI=true, where a missing folder fails the test) and,
// always, synthetic JPEG-structured photos whose EXIF segment carries a unique marker, so that
// the seized-relay scan has EXIF text to look for even in real scans' absence.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { realActaNames, SHARED_ACTAS_DIR, syntheticActa } from "@testigo/client-sdk/testing";

export interface PhotoSource {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly exifMarker?: string;
}

/** The real acta scans, in name order; empty when absent (throws under CI=true). */
export function realActas(): PhotoSource[] {
  return realActaNames().map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(SHARED_ACTAS_DIR, name))) }));
}

/** A synthetic JPEG (SOI, APP1 "Exif\0\0" with an "EXIF-MARKER-<hex>" note, scan bytes, EOI). */
export function syntheticPhoto(size: number): PhotoSource & { exifMarker: string } {
  const photo = syntheticActa(size);
  if (photo.exifMarker === undefined) throw new Error("syntheticActa planted no EXIF marker");
  return { name: photo.name, bytes: photo.bytes, exifMarker: photo.exifMarker };
}
