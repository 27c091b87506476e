// What a volunteer device folder holds, read the way an adversary with the PIN would read it: the
// key-slot file is opened with a PIN (libsodium argon2id through the SDK's key-slots module), and
// every record file of the profile that opens is decrypted with the profile's record key (the
// record format is documented in client-sdk/src/storage/profile-store.ts). Two snapshots can then
// be compared record by record, so a test can say "nothing changed except the sync log".
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseKeySlotFile, profileSubkeys, unlockKeySlots } from "@testigo/client-sdk";
import { concatBytes, fromUtf8, sodium, utf8 } from "@testigo/protocol";

/** The file that holds the PIN slots (client-sdk/src/volunteer/records.ts KEY_SLOT_FILE). */
export const KEY_SLOT_FILE = "keyslots.json";
const NONCE_BYTES = 24;
const RECORD_AD = "testigo/v1/record";

/** Read-only view of a device's files: a folder on disk or an in-memory DeviceStorage. */
export interface DeviceFiles {
  list(): Promise<readonly string[]>;
  read(name: string): Promise<Uint8Array | undefined>;
}

export function folderFiles(dir: string): DeviceFiles {
  return {
    list: async () => readdirSync(dir).sort(),
    read: async (name) => {
      try {
        return new Uint8Array(readFileSync(join(dir, name)));
      } catch {
        return undefined;
      }
    },
  };
}

export function storageFiles(storage: {
  list(prefix: string): Promise<readonly string[]>;
  read(name: string): Promise<Uint8Array | undefined>;
}): DeviceFiles {
  return { list: () => storage.list(""), read: (name) => storage.read(name) };
}

export interface OpenedProfile {
  readonly slot: number;
  readonly dataKey: Uint8Array;
  readonly profileId: Uint8Array;
  /** Record name → plaintext value (the JSON of identity, outbox, mailbox, …; chunk bytes). */
  readonly records: ReadonlyMap<string, Buffer>;
  /** Record name → the file that holds it. */
  readonly files: ReadonlyMap<string, string>;
}

export interface DeviceSnapshot {
  /** Every file name, sorted. */
  readonly names: readonly string[];
  /** SHA-256 of every file, by name. */
  readonly digests: ReadonlyMap<string, string>;
  /**
   * The key-slot file with its failed-unlock counter set to 0 and without its capsule (both are
   * bookkeeping: every unlock and every sync re-seals the capsule, duress-and-wipe.md §2.2).
   */
  readonly keySlots: string | undefined;
  /** Length of the capsule region (base64url characters): re-sealed, it keeps its size. */
  readonly capsuleLength: number | undefined;
  readonly failedUnlocks: number | undefined;
  /** The profile the PIN opens, if it opens one. */
  readonly profile: OpenedProfile | undefined;
}

/** What opens a profile without argon2id: the data key and profile id a PIN unlocked earlier. */
export interface ProfileKey {
  readonly slot: number;
  readonly dataKey: Uint8Array;
  readonly profileId: Uint8Array;
}

/** Opens the key-slot file with `pin` (argon2id); undefined if the PIN opens nothing (or there is no file). */
export async function openWithPin(files: DeviceFiles, pin: string): Promise<OpenedProfile | undefined> {
  const bytes = await files.read(KEY_SLOT_FILE);
  if (bytes === undefined) return undefined;
  let unlocked: ReturnType<typeof unlockKeySlots>;
  try {
    unlocked = unlockKeySlots(parseKeySlotFile(bytes), pin);
  } catch {
    return undefined;
  }
  if (unlocked === undefined) return undefined;
  return openProfile(files, unlocked);
}

/** Decrypts every record file of the profile `key` opens. */
export async function openProfile(files: DeviceFiles, unlocked: ProfileKey): Promise<OpenedProfile> {
  const { recordKey } = profileSubkeys(unlocked.dataKey);
  const ad = concatBytes(utf8(RECORD_AD), new Uint8Array([0]), unlocked.profileId);
  const records = new Map<string, Buffer>();
  const names = new Map<string, string>();
  // File names do not say which profile a record belongs to: every file that opens under this
  // profile's record key is one of its records; the others are another profile's (or not records).
  for (const file of await files.list()) {
    if (file === KEY_SLOT_FILE) continue;
    const sealed = await files.read(file);
    if (sealed === undefined || sealed.length < NONCE_BYTES + 16 + 2) continue;
    let plaintext: Uint8Array;
    try {
      plaintext = sodium().crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        sealed.subarray(NONCE_BYTES),
        ad,
        sealed.subarray(0, NONCE_BYTES),
        recordKey,
      );
    } catch {
      continue;
    }
    const nameLength = ((plaintext[0] ?? 0) << 8) | (plaintext[1] ?? 0);
    const name = fromUtf8(plaintext.subarray(2, 2 + nameLength));
    records.set(name, Buffer.from(plaintext.subarray(2 + nameLength)));
    names.set(name, file);
  }
  return { slot: unlocked.slot, dataKey: unlocked.dataKey, profileId: unlocked.profileId, records, files: names };
}

/**
 * Every file's digest, the key slots and the profile's plaintext records. With a PIN the profile is
 * opened through argon2id; with a ProfileKey (from an earlier snapshot) it is opened directly, and
 * an unchanged key-slot file then proves the PIN still opens the same profile.
 */
export async function snapshotDevice(files: DeviceFiles, unlock: string | ProfileKey): Promise<DeviceSnapshot> {
  const names = [...(await files.list())].sort();
  const digests = new Map<string, string>();
  for (const name of names) {
    const bytes = await files.read(name);
    if (bytes !== undefined) digests.set(name, createHash("sha256").update(bytes).digest("hex"));
  }
  const slotBytes = await files.read(KEY_SLOT_FILE);
  let keySlots: string | undefined;
  let failedUnlocks: number | undefined;
  let capsuleLength: number | undefined;
  if (slotBytes !== undefined) {
    const parsed = JSON.parse(Buffer.from(slotBytes).toString("utf8")) as { failedUnlocks?: number; capsule?: string };
    failedUnlocks = parsed.failedUnlocks;
    capsuleLength = parsed.capsule?.length;
    keySlots = JSON.stringify({ ...parsed, failedUnlocks: 0, capsule: undefined });
  }
  const profile = typeof unlock === "string" ? await openWithPin(files, unlock) : await openProfile(files, unlock);
  return { names, digests, keySlots, capsuleLength, failedUnlocks, profile };
}

/** A record whose value may change in a run that must change nothing else (what `sync` always writes). */
export const SYNC_BOOKKEEPING: ReadonlySet<string> = new Set(["sync-log", "epoch-keys"]);

export interface DiffOptions {
  /** Records whose value may change (default SYNC_BOOKKEEPING). */
  readonly bookkeeping?: ReadonlySet<string>;
  /**
   * Report kinds the device may have queued in between (e.g. "security-notice"): new outbox
   * envelope items of these kinds, appended to the outbox index, each with the next seq.
   */
  readonly mayQueue?: ReadonlySet<string>;
}

export interface Diff {
  /** What changed that should not have; empty means "nothing else changed". */
  readonly problems: string[];
  /** The report items queued in between (allowed by `mayQueue`), in queue order: kind, and reason if any. */
  readonly queued: { kind: string; reason?: string }[];
}

/**
 * Compares two snapshots of the same device: the same files, the same key slots, the same
 * profile opening, the same plaintext in every record (except the values of bookkeeping records,
 * which must still exist), every file outside the opened profile byte-identical — and, if
 * `mayQueue` allows it, new outbox items of those kinds and nothing else.
 */
export function diffSnapshots(before: DeviceSnapshot, after: DeviceSnapshot, options: DiffOptions = {}): Diff {
  const bookkeeping = options.bookkeeping ?? SYNC_BOOKKEEPING;
  const mayQueue = options.mayQueue ?? new Set<string>();
  const problems: string[] = [];
  const queued: { kind: string; reason?: string }[] = [];
  if (before.keySlots !== after.keySlots) problems.push("the key-slot file changed (slots, salt, KDF or limit)");
  if (before.capsuleLength !== after.capsuleLength) problems.push("the capsule region changed size");
  if (before.profile === undefined) throw new Error("diffSnapshots(): the PIN did not open the device before");
  if (after.profile === undefined) {
    problems.push("the PIN no longer opens the profile");
    return { problems, queued };
  }
  // New record files of the profile are judged by their records below.
  const own = new Set([...before.profile.files.values(), ...after.profile.files.values()]);
  for (const name of after.names) {
    if (!before.digests.has(name) && !own.has(name)) problems.push(`file added outside the profile: ${name}`);
  }
  for (const name of before.names) {
    if (!after.digests.has(name) && !own.has(name)) problems.push(`file removed: ${name}`);
    if (name === KEY_SLOT_FILE || own.has(name) || !after.digests.has(name)) continue;
    if (before.digests.get(name) !== after.digests.get(name))
      problems.push(`file outside the profile changed: ${name}`);
  }
  const a = before.profile.records;
  const b = after.profile.records;
  const added: string[] = [];
  for (const record of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const old = a.get(record);
    const now = b.get(record);
    if (old === undefined) {
      const item = record.startsWith("item/") ? parseJson(now) : undefined;
      const kind = (item as { type?: string; message?: { kind?: string } } | undefined)?.message?.kind;
      if (kind !== undefined && mayQueue.has(kind)) added.push(record.slice("item/".length));
      else problems.push(`record added: ${record}${kind === undefined ? "" : ` (${kind})`}`);
    } else if (now === undefined) problems.push(`record removed: ${record}`);
    else if (!bookkeeping.has(record) && record !== "outbox" && record !== "seq" && !old.equals(now)) {
      problems.push(`record changed: ${record}`);
    }
  }
  const items = (value: Buffer | undefined) => (parseJson(value) as { items?: string[] } | undefined)?.items ?? [];
  const next = (value: Buffer | undefined) => (parseJson(value) as { next?: number } | undefined)?.next ?? 0;
  const outboxBefore = items(a.get("outbox"));
  const outboxAfter = items(b.get("outbox"));
  const queuedIds = outboxAfter.slice(outboxBefore.length);
  if (
    JSON.stringify(outboxAfter.slice(0, outboxBefore.length)) !== JSON.stringify(outboxBefore) ||
    JSON.stringify([...queuedIds].sort()) !== JSON.stringify([...added].sort())
  ) {
    problems.push("record changed: outbox (not just the allowed items appended)");
  }
  if (next(b.get("seq")) !== next(a.get("seq")) + added.length) {
    problems.push(
      `record changed: seq (${next(a.get("seq"))} → ${next(b.get("seq"))}, ${added.length} item(s) queued)`,
    );
  }
  for (const id of queuedIds) {
    const item = parseJson(b.get(`item/${id}`)) as { message?: { kind?: string; reason?: string } } | undefined;
    const reason = item?.message?.reason;
    queued.push({ kind: item?.message?.kind ?? "?", ...(reason === undefined ? {} : { reason }) });
  }
  return { problems, queued };
}

function parseJson(value: Buffer | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value.toString("utf8"));
  } catch {
    return undefined;
  }
}
