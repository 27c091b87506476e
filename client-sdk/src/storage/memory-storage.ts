// In-memory DeviceStorage for tests and for short-lived tools. Copies on the way in and out so a
// caller cannot mutate stored bytes by accident.
import { assertStorageName, type BatchWrite, type DeviceStorage, Mutex } from "./storage.js";

export class MemoryStorage implements DeviceStorage {
  private readonly files = new Map<string, Uint8Array>();
  private readonly lock = new Mutex();

  async read(name: string): Promise<Uint8Array | undefined> {
    assertStorageName(name);
    const data = this.files.get(name);
    return data === undefined ? undefined : data.slice();
  }

  async write(name: string, data: Uint8Array): Promise<void> {
    assertStorageName(name);
    this.files.set(name, data.slice());
  }

  async delete(name: string): Promise<void> {
    assertStorageName(name);
    this.files.get(name)?.fill(0);
    this.files.delete(name);
  }

  async list(prefix: string): Promise<readonly string[]> {
    return [...this.files.keys()].filter((name) => name.startsWith(prefix)).sort();
  }

  /** One `write` / `delete` per entry (so a subclass that fails at its n-th operation fails here too). */
  async batch(writes: readonly BatchWrite[], deletes: readonly string[] = []): Promise<void> {
    for (const { name, data } of writes) await this.write(name, data);
    for (const name of deletes) await this.delete(name);
  }

  /** An in-process mutex (a MemoryStorage is never shared between processes). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(fn);
  }

  /** Every stored byte, concatenated: lets tests scan the "disk" for plaintext. */
  snapshot(): Uint8Array[] {
    return [...this.files.values()].map((data) => data.slice());
  }
}
