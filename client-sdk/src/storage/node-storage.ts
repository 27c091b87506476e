// DeviceStorage on a Node file system: one file per name in one folder (mode 0700/0600).
// Writes go to a temporary file that is fsynced, renamed over the target, and the folder is
// fsynced too, so a `kill -9` or power loss leaves either the old or the new content.
//
// The folder's exclusive lock (`exclusive`) is a file, LOCK_FILE, created with O_EXCL ('wx')
// and holding "pid token". Two testigo processes on one device folder (a real-PIN `sync` and a
// duress `unlock`, say) therefore never interleave their read-modify-writes of the key-slot file
// (duress-and-wipe.md §2.3). A lock whose holder is gone is taken over: its pid is not a live
// process, or it is this process's pid with a token this process does not hold (an earlier
// process that had the same pid), or its holder stopped touching it (HEARTBEAT_MS) for STALE_MS
// (a live pid that was reused, e.g. after a reboot). A lock file is never left behind by a
// process that exits normally.
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readdir, readFile, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { assertStorageName, type BatchWrite, type DeviceStorage, Mutex } from "./storage.js";

const TEMP_SUFFIX = ".tmp";
/** The lock file's name: not a record name (records start with "r"), not a temporary. */
export const LOCK_FILE = "lock";
/** How often the holder touches the lock file. */
const HEARTBEAT_MS = 1_000;
/** A lock file untouched for this long is stale whoever holds it (longer than any argon2id run blocks the loop). */
const STALE_MS = 30_000;
const MAX_POLL_MS = 25;
/** Tokens of the locks this process holds now (any NodeStorage instance). */
const heldTokens = new Set<string>();

export class NodeStorage implements DeviceStorage {
  /** Serialises this instance's own sections before they contend for the lock file. */
  private readonly mutex = new Mutex();

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
    const temp = await this.writeTemporary(name, data);
    await rename(temp, join(this.dir, name));
    await this.syncDir();
  }

  /** `data` in a new fsynced temporary file beside `name`, to be renamed over it; its path. */
  private async writeTemporary(name: string, data: Uint8Array): Promise<string> {
    const temp = join(this.dir, `${name}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`);
    const handle = await open(temp, "w", 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return temp;
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
    return names.filter((name) => name.startsWith(prefix) && !name.endsWith(TEMP_SUFFIX) && name !== LOCK_FILE).sort();
  }

  /**
   * Every write goes to its own fsynced temporary file (in parallel) and is renamed over its
   * target; every delete is a plain unlink; then ONE fsync of the folder makes the renames and
   * unlinks durable. Deletes here do not overwrite first (unlike `delete`): they serve the
   * duress unlock and the device erase, which run right after the crypto-erase of the key slots
   * (every file deleted is ciphertext under a key no longer on the device), and an overwrite in
   * place is best effort anyway — flash translation layers and log-structured or copy-on-write
   * file systems (F2FS, btrfs, APFS) write the zeros elsewhere — while its per-file fsync made a
   * duress unlock with photos queued several times slower than a real one (§2.4).
   */
  async batch(writes: readonly BatchWrite[], deletes: readonly string[] = []): Promise<void> {
    for (const { name } of writes) assertStorageName(name);
    for (const name of deletes) assertStorageName(name);
    const temps = await Promise.all(
      writes.map(async ({ name, data }) => ({ temp: await this.writeTemporary(name, data), name })),
    );
    for (const { temp, name } of temps) await rename(temp, join(this.dir, name));
    await Promise.all(deletes.map((name) => rm(join(this.dir, name), { force: true })));
    await this.syncDir();
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      const held = await this.acquireLock();
      const path = join(this.dir, LOCK_FILE);
      const heartbeat = setInterval(() => {
        const now = new Date();
        utimes(path, now, now).catch(() => undefined);
      }, HEARTBEAT_MS);
      heartbeat.unref();
      try {
        return await fn();
      } finally {
        clearInterval(heartbeat);
        await this.releaseLock(held);
      }
    });
  }

  private async acquireLock(): Promise<{ token: string; content: string }> {
    const path = join(this.dir, LOCK_FILE);
    const token = randomBytes(12).toString("hex");
    const content = `${process.pid} ${token}\n`;
    let delay = 1;
    for (;;) {
      // Known as held before the file exists: another instance in this process that reads it
      // must never take it for an earlier process's.
      heldTokens.add(token);
      try {
        const handle = await open(path, "wx", 0o600);
        try {
          await handle.writeFile(content);
        } finally {
          await handle.close();
        }
        return { token, content };
      } catch (error) {
        heldTokens.delete(token);
        if (!isAlreadyThere(error)) throw error;
      }
      const holder = await readLock(path);
      if (holder !== undefined && isStale(holder.content, holder.ageMs)) await takeOver(path, holder.content);
      else {
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(MAX_POLL_MS, delay * 2);
      }
    }
  }

  private async releaseLock(held: { token: string; content: string }): Promise<void> {
    const path = join(this.dir, LOCK_FILE);
    try {
      if ((await readLock(path))?.content === held.content) await rm(path, { force: true });
    } finally {
      // Only once the file is gone: until then this process's other instances see it as live.
      heldTokens.delete(held.token);
    }
  }

  private async syncDir(): Promise<void> {
    const handle = await open(this.dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * A crash between write and rename leaves a temporary file: it never held the only copy. Only
   * temporaries older than STALE_MS go: a younger one may be another live process's write in flight.
   */
  private async removeStaleTemporaries(): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      const path = join(this.dir, name);
      const info = await stat(path).catch(() => undefined);
      if (info !== undefined && Date.now() - info.mtimeMs > STALE_MS) await rm(path, { force: true });
    }
  }
}

async function readLock(path: string): Promise<{ content: string; ageMs: number } | undefined> {
  try {
    const [content, info] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    return { content, ageMs: Date.now() - info.mtimeMs };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Whether the process that wrote lock `content` (last touched `ageMs` ago) no longer holds it. */
function isStale(content: string, ageMs: number): boolean {
  if (ageMs > STALE_MS) return true;
  const match = /^(\d+) ([0-9a-f]+)\n$/.exec(content);
  // Being written right now (created, content not yet there): its creator is alive.
  if (match === null) return false;
  const pid = Number(match[1]);
  if (pid === process.pid) return !heldTokens.has(match[2] ?? "");
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: a live process of another user.
    return (error as { code?: unknown }).code === "ESRCH";
  }
}

/**
 * Removes a stale lock whose content was `content`. It is first renamed aside (atomic), so of
 * several waiters only one removes it; if what was moved is not the stale lock (another waiter
 * already replaced it by its own), it is put back unless a newer one is already there.
 */
async function takeOver(path: string, content: string): Promise<void> {
  const aside = `${path}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  try {
    if ((await readFile(aside, "utf8")) !== content) {
      await link(aside, path).catch((error: unknown) => {
        if (!isAlreadyThere(error)) throw error;
      });
    }
  } finally {
    await rm(aside, { force: true });
  }
}

function isAlreadyThere(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "EEXIST";
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
