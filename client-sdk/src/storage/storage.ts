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
}

/** Storage names are flat: letters, digits, '.', '_' and '-', at most 128 characters. */
export const STORAGE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function assertStorageName(name: string): void {
  if (!STORAGE_NAME.test(name) || name === "." || name === "..") {
    throw new RangeError(`invalid storage name: ${JSON.stringify(name)}`);
  }
}
