// DeviceStorage on a Node file system: one file per name in one folder (mode 0700/0600).
// Writes go to a temporary file that is fsynced, renamed over the target, and the folder is
// fsynced too, so a `kill -9` or power loss leaves either the old or the new content.
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { assertStorageName, type DeviceStorage } from "./storage.js";

const TEMP_SUFFIX = ".tmp";

export class NodeStorage implements DeviceStorage {
  private constructor(readonly dir: string) {}

  /** Opens (creating if needed) a storage folder with owner-only permissions. */
  /**
   * Opens DIR, creating it (owner-only) unless `create` is false: commands that only read an
   * enrolled device must not leave an empty folder behind when given a wrong path.
   */
  static async open(dir: string, options: { create?: boolean } = {}): Promise<NodeStorage> {
    if (options.create === false) {
      if (
        !(await stat(dir).then(
          (s) => s.isDirectory(),
          () => false,
        ))
      )
        throw new DeviceFolderMissing(dir);
    } else await mkdir(dir, { recursive: true, mode: 0o700 });
    const storage = new NodeStorage(dir);
    await storage.removeStaleTemporaries();
    return storage;
  }

  async read(name: string): Promise<Uint8Array | undefined> {
    assertStorageName(name);
    try {
      return new Uint8Array(await readFile(join(this.dir, name)));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async write(name: string, data: Uint8Array): Promise<void> {
    assertStorageName(name);
    const temp = join(this.dir, `${name}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`);
    const handle = await open(temp, "w", 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(this.dir, name));
    await this.syncDir();
  }

  async delete(name: string): Promise<void> {
    assertStorageName(name);
    const path = join(this.dir, name);
    try {
      // Overwrite before unlinking: on flash storage this is best effort only, which is why
      // secrets are erased by destroying the key they are encrypted under (crypto-erase).
      const { size } = await stat(path);
      const handle = await open(path, "r+");
      try {
        await handle.write(new Uint8Array(size), 0, size, 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rm(path, { force: true });
      await this.syncDir();
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async list(prefix: string): Promise<readonly string[]> {
    const names = await readdir(this.dir);
    return names.filter((name) => name.startsWith(prefix) && !name.endsWith(TEMP_SUFFIX)).sort();
  }

  private async syncDir(): Promise<void> {
    const handle = await open(this.dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** A crash between write and rename leaves a temporary file: it never held the only copy. */
  private async removeStaleTemporaries(): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(TEMP_SUFFIX)) await rm(join(this.dir, name), { force: true });
    }
  }
}

function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ENOENT";
}

/** The folder given for an existing device does not exist (nothing was created). */
export class DeviceFolderMissing extends Error {
  override readonly name = "DeviceFolderMissing";
  constructor(readonly dir: string) {
    super(`${dir} does not exist`);
  }
}
