// Typed access to a volunteer profile's records (records.ts) on its ProfileStore. Every read is
// checked with the record's schema; a record that fails is reported as damage, never guessed at.
import { type DeviceKeys, fromBase64url, type Roster, type SignedDocument, verifyRoster } from "@testigo/protocol";
import type { ProfileStore } from "../storage/profile-store.js";
import { VolunteerError } from "./errors.js";
import {
  type CapsuleKeysRecord,
  capsuleKeysRecord,
  type EpochKeysRecord,
  epochKeysRecord,
  type IdentityRecord,
  identityRecord,
  type MailboxRecord,
  mailboxRecord,
  type OutboxIndex,
  type OutboxItem,
  outboxIndex,
  outboxItem,
  RECORD,
  rosterRecord,
  type SettingsRecord,
  type SyncLogRecord,
  seqRecord,
  settingsRecord,
  syncLogRecord,
} from "./records.js";

function parser<T>(
  schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } },
  what: string,
) {
  return (value: unknown): T => {
    const parsed = schema.safeParse(value);
    if (!parsed.success)
      throw new VolunteerError("DAMAGED", `the stored ${what} is damaged: the device folder was altered`);
    return parsed.data;
  };
}

export function bytesOf(text: string): Uint8Array {
  const bytes = fromBase64url(text);
  if (bytes === undefined)
    throw new VolunteerError("DAMAGED", "a stored key is damaged: the device folder was altered");
  return bytes;
}

export class VolunteerStore {
  constructor(readonly records: ProfileStore) {}

  async identity(): Promise<IdentityRecord> {
    const identity = await this.records.getJson(RECORD.identity, parser(identityRecord, "identity"));
    if (identity === undefined) {
      throw new VolunteerError(
        "NOT_ENROLLED",
        "this device has not finished enrolling: enroll again with a new invite",
      );
    }
    return identity;
  }

  async putIdentity(identity: IdentityRecord): Promise<void> {
    await this.records.putJson(RECORD.identity, identity);
  }

  /** Reserves the next seq: the counter is durably advanced BEFORE the caller uses the value. */
  async takeSeq(): Promise<number> {
    const current = (await this.records.getJson(RECORD.seq, parser(seqRecord, "counter")))?.next ?? 0;
    await this.records.putJson(RECORD.seq, { next: current + 1 });
    return current;
  }

  /** The stored roster, verified again against the invite's root fingerprint. */
  async roster(rootFingerprint: Uint8Array): Promise<Roster | undefined> {
    const record = await this.records.getJson(RECORD.roster, parser(rosterRecord, "roster"));
    if (record === undefined) return undefined;
    try {
      return verifyRoster(record.signed, rootFingerprint);
    } catch {
      throw new VolunteerError("DAMAGED", "the stored roster no longer verifies: the device folder was altered");
    }
  }

  async putRoster(serial: number, signed: SignedDocument): Promise<void> {
    await this.records.putJson(RECORD.roster, { serial, signed });
  }

  async epochKeys(): Promise<EpochKeysRecord | undefined> {
    return this.records.getJson(RECORD.epochKeys, parser(epochKeysRecord, "epoch keys"));
  }

  async putEpochKeys(record: EpochKeysRecord): Promise<void> {
    await this.records.putJson(RECORD.epochKeys, record);
  }

  async outboxIndex(): Promise<OutboxIndex> {
    return (await this.records.getJson(RECORD.outbox, parser(outboxIndex, "outbox"))) ?? { items: [] };
  }

  async outboxIds(): Promise<string[]> {
    return (await this.outboxIndex()).items;
  }

  async putOutboxIndex(index: OutboxIndex): Promise<void> {
    await this.records.putJson(RECORD.outbox, index);
  }

  /** Replaces the outbox index's items (keeping its `covered` counts): the one atomic write that commits queued or removed items. */
  async putOutboxIds(ids: readonly string[]): Promise<void> {
    const { covered } = await this.outboxIndex();
    await this.putOutboxIndex({ items: [...ids], ...(covered === undefined ? {} : { covered }) });
  }

  async item(id: string): Promise<OutboxItem | undefined> {
    return this.records.getJson(RECORD.item(id), parser(outboxItem, "outbox item"));
  }

  async putItem(item: OutboxItem): Promise<void> {
    await this.records.putJson(RECORD.item(item.id), item);
  }

  async deleteItem(id: string): Promise<void> {
    await this.records.delete(RECORD.item(id));
  }

  async chunk(photoId: string, index: number): Promise<Uint8Array | undefined> {
    return this.records.get(RECORD.chunk(photoId, index));
  }

  async putChunk(photoId: string, index: number, chunk: Uint8Array): Promise<void> {
    await this.records.put(RECORD.chunk(photoId, index), chunk);
  }

  async deleteChunk(photoId: string, index: number): Promise<void> {
    await this.records.delete(RECORD.chunk(photoId, index));
  }

  async mailbox(): Promise<MailboxRecord> {
    return (
      (await this.records.getJson(RECORD.mailbox, parser(mailboxRecord, "mailbox"))) ?? { lastCounter: 0, received: [] }
    );
  }

  async putMailbox(record: MailboxRecord): Promise<void> {
    await this.records.putJson(RECORD.mailbox, record);
  }

  async syncLog(): Promise<SyncLogRecord> {
    return (await this.records.getJson(RECORD.syncLog, parser(syncLogRecord, "sync log"))) ?? {};
  }

  async putSyncLog(record: SyncLogRecord): Promise<void> {
    await this.records.putJson(RECORD.syncLog, record);
  }

  async settings(): Promise<SettingsRecord> {
    return (await this.records.getJson(RECORD.settings, parser(settingsRecord, "settings"))) ?? { keepSent: false };
  }

  async putSettings(record: SettingsRecord): Promise<void> {
    await this.records.putJson(RECORD.settings, record);
  }

  async capsuleKeys(): Promise<CapsuleKeysRecord | undefined> {
    return this.records.getJson(RECORD.capsuleKeys, parser(capsuleKeysRecord, "capsule keys"));
  }

  async putCapsuleKeys(record: CapsuleKeysRecord): Promise<void> {
    await this.records.putJson(RECORD.capsuleKeys, record);
  }
}

/** The device keys of an identity record, as bytes. */
export function deviceKeysOf(identity: IdentityRecord): DeviceKeys {
  return {
    signing: { publicKey: bytesOf(identity.signing.publicKey), privateKey: bytesOf(identity.signing.privateKey) },
    encryption: {
      publicKey: bytesOf(identity.encryption.publicKey),
      privateKey: bytesOf(identity.encryption.privateKey),
    },
  };
}
