// A coordinator device: its unlocked store, its keys and a relay client acting as it. Commands
// that talk to the relay call `maintainEpochKeys()` first, so keys rotate and old ones are erased
// whenever the coordinator uses the tool.
import {
  createEpochKey,
  type DeviceKeys,
  type EncryptionKeyPair,
  epochPrivateKeyDeletionTime,
  epochsToPublish,
  formatRosterFingerprint,
  fromBase64url,
  type SignedDocumentWire,
  type SigningKeyPair,
  toBase64url,
} from "@testigo/protocol";
import type { KdfLimits } from "../crypto/key-slots.js";
import type { ProfileStore } from "../storage/profile-store.js";
import type { DeviceStorage } from "../storage/storage.js";
import type { HttpTransport } from "../transport/http.js";
import { RelayClient } from "../transport/relay-client.js";
import { CoordinatorError } from "./errors.js";
import {
  type CountersRecord,
  countersRecord,
  type DeviceConfig,
  deviceConfig,
  type EpochRecord,
  epochRecord,
  type InviteUseRecord,
  inviteUseRecord,
  RECORD,
  type RosterRecord,
  rosterRecord,
  type VolunteerRecord,
  volunteerKeyRecord,
  volunteerRecord,
} from "./state.js";
import { openVault } from "./vault.js";

export interface DeviceOptions {
  readonly now?: () => number;
  readonly transport?: HttpTransport;
  /** Test-only: a cheaper argon2id for key slots created through the SDK API. */
  readonly kdfLimits?: KdfLimits;
}

export function bytesOf(text: string): Uint8Array {
  const bytes = fromBase64url(text);
  if (bytes === undefined) throw new Error("a stored key is damaged");
  return bytes;
}

/** What a key index record says, as one comparable string. */
function keyIndexText(pseudonym: string, duress: boolean): string {
  return duress ? `${pseudonym} duress` : pseudonym;
}

export class CoordinatorDevice {
  readonly client: RelayClient;
  readonly now: () => number;
  /**
   * Key index records (`vkey/<key>` → its volunteer and whether it is a duress key) this device
   * has written or read in this store. An index record never changes once written, so
   * `putVolunteer`, which fetch calls for every volunteer a page changed, writes it only once
   * instead of at every page (two of its three record writes, each an encryption).
   */
  private readonly keyIndex = new Map<string, string>();

  constructor(
    readonly store: ProfileStore,
    readonly config: DeviceConfig,
    options: DeviceOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.client = new RelayClient(
      config.relayUrl,
      {
        campaignId: config.campaignId,
        role: "coordinator",
        principal: config.deviceId,
        signingPrivateKey: bytesOf(config.signing.privateKey),
      },
      { now: this.now, ...(options.transport === undefined ? {} : { transport: options.transport }) },
    );
  }

  /** Unlocks a device folder. Refuses a device whose join is not finished. */
  static async open(
    storage: DeviceStorage,
    passphrase: string,
    options: DeviceOptions = {},
  ): Promise<CoordinatorDevice> {
    const store = await openVault(storage, passphrase);
    const config = await store.getJson(RECORD.config, (v) => deviceConfig.parse(v));
    if (config === undefined) {
      throw new CoordinatorError(
        "NOT_INITIALISED",
        "the device folder is incomplete: run `testigo coordinator init` again",
      );
    }
    if (!config.joined) {
      throw new CoordinatorError(
        "JOIN_PENDING",
        "this device has asked to join a campaign but has no bundle yet: run `testigo coordinator join --dir DIR --bundle FILE`",
      );
    }
    return new CoordinatorDevice(store, config, options);
  }

  get deviceKeys(): DeviceKeys {
    return {
      encryption: {
        publicKey: bytesOf(this.config.encryption.publicKey),
        privateKey: bytesOf(this.config.encryption.privateKey),
      },
      signing: {
        publicKey: bytesOf(this.config.signing.publicKey),
        privateKey: bytesOf(this.config.signing.privateKey),
      },
    };
  }

  get rootKey(): SigningKeyPair | undefined {
    const root = this.config.root;
    return root === undefined
      ? undefined
      : { publicKey: bytesOf(root.publicKey), privateKey: bytesOf(root.privateKey) };
  }

  get inviteKey(): Uint8Array {
    return bytesOf(this.config.inviteKey);
  }

  get fingerprintText(): string {
    return formatRosterFingerprint(bytesOf(this.config.rootFingerprint));
  }

  async roster(): Promise<RosterRecord | undefined> {
    return this.store.getJson(RECORD.roster, (v) => rosterRecord.parse(v));
  }

  async saveConfig(config: DeviceConfig): Promise<void> {
    await this.store.putJson(RECORD.config, deviceConfig.parse(config));
    (this as { config: DeviceConfig }).config = config;
  }

  // --- epoch keys

  async epochRecords(): Promise<EpochRecord[]> {
    const out: EpochRecord[] = [];
    for (const name of await this.store.list(RECORD.epochPrefix)) {
      const record = await this.store.getJson(name, (v) => epochRecord.parse(v));
      if (record !== undefined) out.push(record);
    }
    return out;
  }

  /** Every epoch private key not yet erased: what envelopes may be sealed to. */
  async epochKeyPairs(): Promise<EncryptionKeyPair[]> {
    return (await this.epochRecords()).map((r) => ({
      publicKey: bytesOf(r.publicKey),
      privateKey: bytesOf(r.privateKey),
    }));
  }

  /**
   * Creates the current and next epoch keys if missing, publishes them if the relay lacks them,
   * and erases private keys past their deletion time (forward secrecy: a laptop seized later
   * cannot open ciphertext captured earlier). Returns what changed.
   */
  async maintainEpochKeys(): Promise<{ created: number; erased: number; published: boolean }> {
    const now = this.now();
    let erased = 0;
    const records = await this.epochRecords();
    for (const record of records) {
      if (now >= record.deleteAt) {
        await this.store.delete(RECORD.epoch(record.epoch));
        erased++;
      }
    }
    const live = new Map(records.filter((r) => now < r.deleteAt).map((r) => [r.epoch, r]));
    let created = 0;
    for (const epoch of epochsToPublish(now)) {
      if (live.has(epoch)) continue;
      const made = createEpochKey({
        campaignId: this.config.campaignId,
        deviceId: this.config.deviceId,
        epoch,
        deviceSigningKey: bytesOf(this.config.signing.privateKey),
      });
      const record: EpochRecord = {
        epoch,
        publicKey: toBase64url(made.keyPair.publicKey),
        privateKey: toBase64url(made.keyPair.privateKey),
        notBefore: made.value.notBefore,
        notAfter: made.value.notAfter,
        deleteAt: epochPrivateKeyDeletionTime(made.value),
        signed: made.signed,
      };
      await this.store.putJson(RECORD.epoch(epoch), record);
      live.set(epoch, record);
      created++;
    }
    // Publish every key still valid for sealing (not past notAfter): current, next, and the
    // previous one during its grace hour.
    const publishable = [...live.values()]
      .filter((r) => now < r.notAfter + 60 * 60 * 1000)
      .sort((a, b) => a.epoch - b.epoch);
    const published = await this.client.getEpochKeys(this.config.campaignId);
    const have = new Set((published[this.config.deviceId] ?? []).map((d) => d.payload));
    const missing = publishable.some((r) => !have.has(r.signed.payload));
    if (missing) await this.client.putEpochKeys(publishable.map((r): SignedDocumentWire => r.signed));
    return { created, erased, published: missing };
  }

  // --- volunteers

  async volunteerBySigningKey(signingKey: Uint8Array): Promise<VolunteerRecord | undefined> {
    const found = await this.volunteerByKey(signingKey);
    return found?.duress === false ? found.volunteer : undefined;
  }

  /** The volunteer a key belongs to, as its signing key or (`duress: true`) as its duress key. */
  async volunteerByKey(key: Uint8Array): Promise<{ volunteer: VolunteerRecord; duress: boolean } | undefined> {
    const name = RECORD.volunteerKey(toBase64url(key));
    const index = await this.store.getJson(name, (v) => volunteerKeyRecord.parse(v));
    if (index !== undefined) this.keyIndex.set(name, keyIndexText(index.pseudonym, index.duress === true));
    const volunteer = index === undefined ? undefined : await this.volunteer(index.pseudonym);
    return volunteer === undefined ? undefined : { volunteer, duress: index?.duress === true };
  }

  async volunteer(name: string): Promise<VolunteerRecord | undefined> {
    return this.store.getJson(RECORD.volunteer(name), (v) => volunteerRecord.parse(v));
  }

  async putVolunteer(record: VolunteerRecord): Promise<void> {
    await this.store.putJson(RECORD.volunteer(record.pseudonym), volunteerRecord.parse(record));
    await this.putKeyIndex(record.signingKey, record.pseudonym, false);
    if (record.duressKey !== undefined) await this.putKeyIndex(record.duressKey, record.pseudonym, true);
  }

  /** Writes `vkey/<key>` unless this device already wrote or read exactly this record. */
  private async putKeyIndex(key: string, pseudonym: string, duress: boolean): Promise<void> {
    const name = RECORD.volunteerKey(key);
    const text = keyIndexText(pseudonym, duress);
    if (this.keyIndex.get(name) === text) return;
    await this.store.putJson(name, duress ? { pseudonym, duress: true } : { pseudonym });
    this.keyIndex.set(name, text);
  }

  async volunteers(): Promise<VolunteerRecord[]> {
    const out: VolunteerRecord[] = [];
    for (const name of await this.store.list(RECORD.volunteerPrefix)) {
      const record = await this.store.getJson(name, (v) => volunteerRecord.parse(v));
      if (record !== undefined) out.push(record);
    }
    return out;
  }

  async counters(): Promise<CountersRecord> {
    return (await this.store.getJson(RECORD.counters, (v) => countersRecord.parse(v))) ?? { quarantined: 0 };
  }

  /** Counts quarantined items; `security` of them were refused enrollments (attacks). */
  async addQuarantined(count: number, security = 0): Promise<void> {
    if (count === 0) return;
    const current = await this.counters();
    await this.store.putJson(RECORD.counters, {
      quarantined: current.quarantined + count,
      security: (current.security ?? 0) + security,
    });
  }

  // --- invites used

  async inviteUse(storedHash: string): Promise<InviteUseRecord | undefined> {
    return this.store.getJson(RECORD.inviteUse(storedHash), (v) => inviteUseRecord.parse(v));
  }

  async putInviteUse(record: InviteUseRecord): Promise<void> {
    await this.store.putJson(RECORD.inviteUse(record.storedHash), inviteUseRecord.parse(record));
  }
}
