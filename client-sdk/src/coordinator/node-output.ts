// FetchOutput on disk (Node only): OUT/reports.jsonl (append-only, fsynced), OUT/photos/ and
// OUT/quarantine/ (each file written to a temporary name, fsynced, renamed, folder fsynced).
// OUT/partial/<photoId>.chunks keeps the ciphertext chunks of a photo being downloaded, in order,
// so that a fetch killed mid-photo resumes there; it is deleted once the photo is written.
import { createHash, randomBytes } from "node:crypto";
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, truncate } from "node:fs/promises";
import { join } from "node:path";
import { DecryptionFailed, PHOTO_CHUNK_CIPHERTEXT_BYTES, utf8 } from "@testigo/protocol";
import {
  type FetchOutput,
  type PhotoDownload,
  photoFileName,
  type QuarantineEntry,
  type ReportLine,
} from "./output.js";

export const REPORTS_FILE = "reports.jsonl";
export const PHOTOS_DIR = "photos";
export const QUARANTINE_DIR = "quarantine";
/** Ciphertext chunks of photos whose download was interrupted (removed once the photo is written). */
export const PARTIAL_DIR = "partial";
const KEPT_SUFFIX = ".chunks";
/** Chunks appended between two fsyncs of a kept-chunks file (a kill loses at most these). */
const KEEP_SYNC_EVERY = 16;

export class NodeFetchOutput implements FetchOutput {
  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<NodeFetchOutput> {
    await mkdir(join(dir, PHOTOS_DIR), { recursive: true, mode: 0o700 });
    await mkdir(join(dir, QUARANTINE_DIR), { recursive: true, mode: 0o700 });
    return new NodeFetchOutput(dir);
  }

  /**
   * Ids of every complete line. A line torn by a kill (no final newline, or not JSON) is cut
   * off here, before anything is appended, so the file stays one JSON document per line.
   */
  async writtenIds(): Promise<ReadonlySet<string>> {
    const path = join(this.dir, REPORTS_FILE);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return new Set();
      throw error;
    }
    const ids = new Set<string>();
    let good = 0;
    let start = 0;
    for (;;) {
      const end = text.indexOf("\n", start);
      if (end < 0) break;
      const id = idOf(text.slice(start, end));
      if (id === undefined) break;
      ids.add(id);
      start = end + 1;
      good = start;
    }
    const goodBytes = Buffer.byteLength(text.slice(0, good), "utf8");
    if (goodBytes !== Buffer.byteLength(text, "utf8")) {
      await truncate(path, goodBytes);
      await syncPath(path);
    }
    return ids;
  }

  async findPhoto(photoId: string, sha256?: Uint8Array): Promise<string | undefined> {
    const names = await readdir(join(this.dir, PHOTOS_DIR));
    const name = names.find((n) => n.startsWith(`${photoId}.`) && !n.endsWith(".tmp"));
    if (name === undefined) return undefined;
    const path = `${PHOTOS_DIR}/${name}`;
    if (sha256 === undefined) return path;
    const { digest } = await hashFile(join(this.dir, path));
    return Buffer.from(sha256).equals(digest) ? path : undefined;
  }

  async startPhoto(photoId: string): Promise<PhotoDownload> {
    const photos = join(this.dir, PHOTOS_DIR);
    const partial = join(this.dir, PARTIAL_DIR);
    await mkdir(partial, { recursive: true, mode: 0o700 });
    // Photo files a killed run left half-written: the kept chunks are what resumes, not these.
    for (const name of await readdir(photos)) {
      if (name.startsWith(`${photoId}.`) && name.endsWith(".tmp")) await rm(join(photos, name), { force: true });
    }
    const keptPath = join(partial, `${photoId}${KEPT_SUFFIX}`);
    const kept = await open(keptPath, "a+", 0o600);
    const temp = join(photos, `${photoId}.${randomBytes(6).toString("hex")}.tmp`);
    let plain: FileHandle | undefined;
    try {
      // A chunk torn by a kill is cut off: only whole chunks are kept.
      const { size } = await kept.stat();
      const whole = Math.floor(size / PHOTO_CHUNK_CIPHERTEXT_BYTES);
      if (whole * PHOTO_CHUNK_CIPHERTEXT_BYTES !== size) await kept.truncate(whole * PHOTO_CHUNK_CIPHERTEXT_BYTES);
      plain = await open(temp, "w", 0o600);
      return new NodePhotoDownload(photos, keptPath, kept, temp, plain, photoId, whole);
    } catch (error) {
      await plain?.close();
      await kept.close();
      throw error;
    }
  }

  async appendReports(lines: readonly ReportLine[]): Promise<void> {
    if (lines.length === 0) return;
    const text = lines.map((line) => `${JSON.stringify(line)}\n`).join("");
    const path = join(this.dir, REPORTS_FILE);
    const handle = await open(path, "a", 0o600);
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await syncPath(this.dir);
  }

  async writeQuarantine(entry: QuarantineEntry): Promise<void> {
    const dir = join(this.dir, QUARANTINE_DIR);
    await writeDurably(dir, join(dir, `${entry.id}.json`), utf8(`${JSON.stringify(entry, null, 2)}\n`));
  }
}

function idOf(line: string): string | undefined {
  try {
    const value: unknown = JSON.parse(line);
    const id = (value as { id?: unknown } | null)?.id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

async function writeDurably(dir: string, path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(temp, "w", 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await syncPath(dir);
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

class NodePhotoDownload implements PhotoDownload {
  private head = new Uint8Array(0);
  private sinceSync = 0;
  private closed = false;

  constructor(
    private readonly photosDir: string,
    private readonly keptPath: string,
    private readonly kept: FileHandle,
    private readonly temp: string,
    private readonly plain: FileHandle,
    private readonly photoId: string,
    public keptChunks: number,
  ) {}

  async readKept(index: number): Promise<Uint8Array> {
    if (index < 0 || index >= this.keptChunks) throw new RangeError(`no kept chunk ${index}`);
    const chunk = new Uint8Array(PHOTO_CHUNK_CIPHERTEXT_BYTES);
    const { bytesRead } = await this.kept.read(chunk, 0, chunk.length, index * PHOTO_CHUNK_CIPHERTEXT_BYTES);
    if (bytesRead !== chunk.length) throw new DecryptionFailed();
    return chunk;
  }

  async keep(chunk: Uint8Array): Promise<void> {
    await this.kept.write(chunk, 0, chunk.length, this.keptChunks * PHOTO_CHUNK_CIPHERTEXT_BYTES);
    this.keptChunks++;
    if (++this.sinceSync >= KEEP_SYNC_EVERY) {
      this.sinceSync = 0;
      await this.kept.sync();
    }
  }

  async write(piece: Uint8Array): Promise<void> {
    if (this.head.length < 16) this.head = Buffer.concat([this.head, piece.subarray(0, 16)]);
    await this.plain.write(piece);
  }

  async commit(sha256: Uint8Array, size: number): Promise<string> {
    await this.plain.sync();
    await this.finish();
    // Verified again as it lies on disk, before it is declared written.
    const written = await hashFile(this.temp);
    if (written.size !== size || !Buffer.from(sha256).equals(written.digest)) {
      await rm(this.temp, { force: true });
      throw new DecryptionFailed();
    }
    const name = photoFileName(this.photoId, this.head);
    await rename(this.temp, join(this.photosDir, name));
    await syncPath(this.photosDir);
    await rm(this.keptPath, { force: true });
    return `${PHOTOS_DIR}/${name}`;
  }

  async close(): Promise<void> {
    await this.finish();
    await rm(this.temp, { force: true });
  }

  async discard(): Promise<void> {
    await this.close();
    await rm(this.keptPath, { force: true });
  }

  private async finish(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.plain.close();
    await this.kept.sync();
    await this.kept.close();
  }
}

async function hashFile(path: string): Promise<{ digest: Buffer; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return { digest: hash.digest(), size };
}
