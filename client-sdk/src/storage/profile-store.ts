// One profile's encrypted records on a DeviceStorage.
//
// The profile's data key is never used directly: two subkeys are derived from it with libsodium's
// KDF (crypto_kdf_derive_from_key, BLAKE2b-based; context "tgstore1"), one per job, so a key
// never serves as both an AEAD key and a MAC key:
//   subkey 1 = the record key   (XChaCha20-Poly1305)
//   subkey 2 = the file-name key (keyed BLAKE2b-128 of the record name)
//
// Each record is one file: `nonce(24) || XChaCha20-Poly1305(u16be(nameLength) || name || value)`,
// with associated data `"testigo/v1/record" || 0x00 || profileId`, under the record key.
// File names are `r<32 hex>`, BLAKE2b-128(ad || name, key = file-name key): the names say nothing
// about the contents (no "outbox", no table code) nor about which profile a file belongs to — a
// folder holding a real and a decoy profile looks like a folder holding one (no per-profile tag).
// A profile finds its own files by name, or by trying to decrypt (list, destroy, destroyOthers). Destroying the data key (key-slots.ts)
// makes every record unreadable even if a file survives on flash storage.
import { concatBytes, fromUtf8, randomBytes, sodium, toHex, utf8 } from "@testigo/protocol";
import type { DeviceStorage } from "./storage.js";

const NONCE_BYTES = 24;
const RECORD_AD = "testigo/v1/record";
const MAX_NAME_BYTES = 512;
/** crypto_kdf context: exactly 8 bytes. */
const KDF_CONTEXT = "tgstore1";
const RECORD_SUBKEY_ID = 1;
const NAME_SUBKEY_ID = 2;
const SUBKEY_BYTES = 32;
/** Every record file's name starts with this, whichever profile it belongs to. */
export const RECORD_FILE_PREFIX = "r";

/** The two subkeys of a profile's data key (exported for tests and other implementations). */
export function profileSubkeys(dataKey: Uint8Array): { recordKey: Uint8Array; nameKey: Uint8Array } {
  const s = sodium();
  return {
    recordKey: s.crypto_kdf_derive_from_key(SUBKEY_BYTES, RECORD_SUBKEY_ID, KDF_CONTEXT, dataKey),
    nameKey: s.crypto_kdf_derive_from_key(SUBKEY_BYTES, NAME_SUBKEY_ID, KDF_CONTEXT, dataKey),
  };
}

export class ProfileStore {
  private readonly ad: Uint8Array;
  private readonly recordKey: Uint8Array;
  private readonly nameKey: Uint8Array;
  /**
   * File name → record name, for files this profile wrote or already opened. A file's name is a
   * keyed hash of its record's name, so the pair never changes: `list` decrypts a file once, not
   * at every call (a coordinator device lists its records at every fetch, thousands of them).
   * Files of other profiles are not remembered (they are tried again: a damaged file of this
   * profile that another process rewrites is then found).
   */
  private readonly names: Map<string, string> = new Map();

  constructor(
    readonly storage: DeviceStorage,
    dataKey: Uint8Array,
    profileId: Uint8Array,
  ) {
    this.ad = concatBytes(utf8(RECORD_AD), new Uint8Array([0]), profileId);
    const { recordKey, nameKey } = profileSubkeys(dataKey);
    this.recordKey = recordKey;
    this.nameKey = nameKey;
  }

  /**
   * The same profile's records on another storage: a WriteBatch over this one's, so that several
   * records are written with one folder sync (the unlock's fixed writes, duress.ts).
   */
  on(storage: DeviceStorage): ProfileStore {
    const copy = Object.create(ProfileStore.prototype) as ProfileStore;
    return Object.assign(copy, {
      storage,
      ad: this.ad,
      recordKey: this.recordKey,
      nameKey: this.nameKey,
      names: this.names,
    });
  }

  /** The file that holds record `name` of this profile (whether or not it exists). */
  fileNameOf(name: string): string {
    return this.fileName(name);
  }

  /** Deletes every record file in the storage, of every profile (the device's wipe). */
  static async destroyAll(storage: DeviceStorage): Promise<void> {
    for (const file of await storage.list(RECORD_FILE_PREFIX)) await storage.delete(file);
  }

  async put(name: string, value: Uint8Array): Promise<void> {
    const nameBytes = utf8(name);
    if (nameBytes.length === 0 || nameBytes.length > MAX_NAME_BYTES) throw new RangeError("record name length");
    const length = new Uint8Array([nameBytes.length >> 8, nameBytes.length & 0xff]);
    const nonce = randomBytes(NONCE_BYTES);
    const sealed = sodium().crypto_aead_xchacha20poly1305_ietf_encrypt(
      concatBytes(length, nameBytes, value),
      this.ad,
      null,
      nonce,
      this.recordKey,
    );
    const file = this.fileName(name);
    await this.storage.write(file, concatBytes(nonce, sealed));
    this.names.set(file, name);
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const bytes = await this.storage.read(this.fileName(name));
    if (bytes === undefined) return undefined;
    const record = this.open(bytes);
    if (record === undefined || record.name !== name) throw new CorruptRecord(name);
    return record.value;
  }

  async getJson<T>(name: string, parse: (value: unknown) => T): Promise<T | undefined> {
    const bytes = await this.get(name);
    return bytes === undefined ? undefined : parse(JSON.parse(fromUtf8(bytes)));
  }

  async putJson(name: string, value: unknown): Promise<void> {
    await this.put(name, utf8(JSON.stringify(value)));
  }

  async delete(name: string): Promise<void> {
    const file = this.fileName(name);
    await this.storage.delete(file);
    this.names.delete(file);
  }

  /**
   * Names of this profile's records that start with `prefix`, sorted. Decrypts every record file
   * it has not seen yet; files that do not open under this profile's key (another profile's) are
   * skipped. `get` still refuses a damaged file of its own.
   */
  async list(prefix: string): Promise<string[]> {
    const names: string[] = [];
    for (const file of await this.storage.list(RECORD_FILE_PREFIX)) {
      let name = this.names.get(file);
      if (name === undefined) {
        name = (await this.openFile(file))?.name;
        if (name !== undefined) this.names.set(file, name);
      }
      if (name?.startsWith(prefix) === true) names.push(name);
    }
    return names.sort();
  }

  /** Deletes every file of this profile. */
  async destroy(): Promise<void> {
    for (const file of await this.storage.list(RECORD_FILE_PREFIX)) {
      if ((await this.openFile(file)) !== undefined) await this.storage.delete(file);
    }
    this.names.clear();
  }

  /** Deletes every record file that is NOT this profile's (the duress path's erase of the other profile). */
  async destroyOthers(): Promise<number> {
    let deleted = 0;
    for (const file of await this.storage.list(RECORD_FILE_PREFIX)) {
      if ((await this.openFile(file)) === undefined) {
        await this.storage.delete(file);
        deleted++;
      }
    }
    return deleted;
  }

  private async openFile(file: string): Promise<{ name: string; value: Uint8Array } | undefined> {
    const bytes = await this.storage.read(file);
    return bytes === undefined ? undefined : this.open(bytes);
  }

  private fileName(name: string): string {
    const digest = sodium().crypto_generichash(16, concatBytes(this.ad, utf8(name)), this.nameKey);
    return `${RECORD_FILE_PREFIX}${toHex(digest)}`;
  }

  private open(bytes: Uint8Array): { name: string; value: Uint8Array } | undefined {
    if (bytes.length < NONCE_BYTES + 16 + 2) return undefined;
    let plaintext: Uint8Array;
    try {
      plaintext = sodium().crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        bytes.subarray(NONCE_BYTES),
        this.ad,
        bytes.subarray(0, NONCE_BYTES),
        this.recordKey,
      );
    } catch {
      return undefined;
    }
    const nameLength = ((plaintext[0] ?? 0) << 8) | (plaintext[1] ?? 0);
    if (nameLength === 0 || 2 + nameLength > plaintext.length) return undefined;
    try {
      return { name: fromUtf8(plaintext.subarray(2, 2 + nameLength)), value: plaintext.slice(2 + nameLength) };
    } catch {
      return undefined;
    }
  }
}

/** A record that does not decrypt under this profile's key: the device folder was tampered with or damaged. */
export class CorruptRecord extends Error {
  readonly code = "CORRUPT_RECORD" as const;
  override readonly name = "CorruptRecord";
  constructor(record: string) {
    super(`a stored record (${record.length > 40 ? "file" : record}) is damaged or was altered; it was not used`);
  }
}
