// In-memory DeviceStorage for tests and for short-lived tools. Copies on the way in and out so a
// caller cannot mutate stored bytes by accident.
import { assertStorageName, type DeviceStorage } from "./storage.js";

export class MemoryStorage implements DeviceStorage {
  private readonly files = new Map<string, Uint8Array>();

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

  /** Every stored byte, concatenated: lets tests scan the "disk" for plaintext. */
  snapshot(): Uint8Array[] {
    return [...this.files.values()].map((data) => data.slice());
  }
}
