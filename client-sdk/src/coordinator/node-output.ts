// FetchOutput on disk (Node only): OUT/reports.jsonl (append-only, fsynced), OUT/photos/ and
// OUT/quarantine/ (each file written to a temporary name, fsynced, renamed, folder fsynced).
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, truncate } from "node:fs/promises";
import { join } from "node:path";
import { utf8 } from "@testigo/protocol";
import { type FetchOutput, photoFileName, type QuarantineEntry, type ReportLine } from "./output.js";

export const REPORTS_FILE = "reports.jsonl";
export const PHOTOS_DIR = "photos";
export const QUARANTINE_DIR = "quarantine";

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
    const digest = createHash("sha256")
      .update(await readFile(join(this.dir, path)))
      .digest();
    return Buffer.from(sha256).equals(digest) ? path : undefined;
  }

  async writePhoto(photoId: string, bytes: Uint8Array): Promise<string> {
    const path = `${PHOTOS_DIR}/${photoFileName(photoId, bytes)}`;
    await writeDurably(join(this.dir, PHOTOS_DIR), join(this.dir, path), bytes);
    return path;
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
