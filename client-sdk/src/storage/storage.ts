// Where a device keeps its files. The SDK's core only talks to this interface, so it runs in
// Node (node-storage.ts), in a browser (an IndexedDB implementation can follow) and in tests
// (memory-storage.ts). Everything written through it is already ciphertext, except the key-slot
// file's public parameters (salt, KDF limits, failed-unlock counter).

export interface DeviceStorage {
  /** The bytes stored under `name`, or undefined. */
  read(name: string): Promise<Uint8Array | undefined>;
  /** Replaces `name` atomically and durably: after it resolves, a crash leaves either the old or the new bytes. */
  write(name: string, data: Uint8Array): Promise<void>;
  /** Removes `name` (best effort overwrite first). Missing names are not an error. */
  delete(name: string): Promise<void>;
  /** Names that start with `prefix`, sorted. */
  list(prefix: string): Promise<readonly string[]>;
  /**
   * Writes every entry (each one replaced atomically, as `write` does) and removes every name in
   * `deletes` WITHOUT overwriting it first, then makes all of it durable at once (one folder sync
   * on a file system). Not atomic as a group: a crash may leave any subset done. For writes that
   * are repeated until done (the duress unlock's erase) and for the unlock's fixed set of writes:
   * the cost must not grow with each file's own sync (duress-and-wipe.md §2.3).
   */
  batch(writes: readonly BatchWrite[], deletes?: readonly string[]): Promise<void>;
  /**
   * Runs `fn` while holding this device folder's exclusive lock: no other `exclusive` section on
   * the same folder (in this process or, for a file system, in any other process) runs at the
   * same time. Every read-modify-write of the key-slot file runs inside one. Not re-entrant:
   * `fn` must not call `exclusive` again.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export interface BatchWrite {
  readonly name: string;
  readonly data: Uint8Array;
}

/** Storage names are flat: letters, digits, '.', '_' and '-', at most 128 characters. */
export const STORAGE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function assertStorageName(name: string): void {
  if (!STORAGE_NAME.test(name) || name === "." || name === "..") {
    throw new RangeError(`invalid storage name: ${JSON.stringify(name)}`);
  }
}

/** A promise-chain mutex: one holder at a time, in this process. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release: () => void = () => undefined;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await previous;
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * Buffers the writes and deletes made through it and hands them to the underlying storage's
 * `batch` in one go (`commit`). Reads see the buffered state. Lets a ProfileStore write a whole
 * profile with one folder sync.
 */
export class WriteBatch implements DeviceStorage {
  private readonly writes = new Map<string, Uint8Array>();
  private readonly deletes = new Set<string>();
  private readonly transients = new Set<string>();

  constructor(readonly storage: DeviceStorage) {}

  async read(name: string): Promise<Uint8Array | undefined> {
    assertStorageName(name);
    if (this.deletes.has(name)) return undefined;
    return this.writes.get(name)?.slice() ?? (await this.storage.read(name));
  }

  async write(name: string, data: Uint8Array): Promise<void> {
    assertStorageName(name);
    this.deletes.delete(name);
    this.writes.set(name, data.slice());
  }

  async delete(name: string): Promise<void> {
    assertStorageName(name);
    this.writes.delete(name);
    this.deletes.add(name);
  }

  async list(prefix: string): Promise<readonly string[]> {
    const names = new Set(await this.storage.list(prefix));
    for (const name of this.deletes) names.delete(name);
    for (const name of this.writes.keys()) if (name.startsWith(prefix)) names.add(name);
    return [...names].sort();
  }

  async batch(writes: readonly BatchWrite[], deletes: readonly string[] = []): Promise<void> {
    for (const name of deletes) await this.delete(name);
    for (const { name, data } of writes) await this.write(name, data);
  }

  exclusive<T>(_fn: () => Promise<T>): Promise<T> {
    return Promise.reject(new Error("WriteBatch.exclusive: take the lock on the underlying storage"));
  }

  /** Number of buffered writes. */
  get size(): number {
    return this.writes.size;
  }

  /**
   * Makes a buffered write transient: `commit` writes it like the others, then deletes it in the
   * same batch (a duress-unlock-shaped write that leaves nothing behind: volunteer/duress.ts pads).
   */
  transient(name: string): void {
    assertStorageName(name);
    if (!this.writes.has(name)) throw new Error(`WriteBatch.transient: ${name} is not written in this batch`);
    this.transients.add(name);
  }

  /** Hands every buffered write and delete to the underlying storage's `batch`, then forgets them. */
  async commit(): Promise<void> {
    const writes = [...this.writes].map(([name, data]) => ({ name, data }));
    const deletes = [...this.deletes, ...[...this.transients].filter((name) => this.writes.has(name))];
    this.writes.clear();
    this.deletes.clear();
    this.transients.clear();
    await this.storage.batch(writes, deletes);
  }
}
