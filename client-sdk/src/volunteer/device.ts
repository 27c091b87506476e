// The volunteer device's key-slot file on a DeviceStorage: create it at enrollment, unlock it with
// a PIN, erase it. Two slots always: the real profile under the PIN, and the decoy profile under
// the duress PIN when one is given (random bytes otherwise), so the file never says whether a
// duress PIN exists. No I/O of its own: storage is passed in.
import {
  createKeySlots,
  DEFAULT_MAX_FAILED_UNLOCKS,
  eraseKeySlots,
  type KdfLimits,
  type KeySlotFile,
  type NewProfile,
  parseKeySlotFile,
  serializeKeySlotFile,
  type UnlockedProfile,
  unlockKeySlots,
} from "../crypto/key-slots.js";
import { ProfileStore, RECORD_FILE_PREFIX } from "../storage/profile-store.js";
import type { DeviceStorage } from "../storage/storage.js";
import { VolunteerError, WrongPin } from "./errors.js";
import { KEY_SLOT_FILE } from "./records.js";

/**
 * Failed unlocks allowed in a row unless enrollment chose another limit. The counter and the
 * limit are kept (in clear) in the key-slot file so they can be read before unlocking; at the
 * limit the device erases itself (eraseDevice).
 */
export const MAX_FAILED_UNLOCKS = DEFAULT_MAX_FAILED_UNLOCKS;

export interface OpenedProfile extends UnlockedProfile {
  readonly store: ProfileStore;
  /**
   * The slot's sealed text as it was when it opened. A profile whose slot no longer holds it was
   * crypto-erased meanwhile by another process (a duress unlock, a wipe): see ownSlotErased.
   */
  readonly sealed: string;
}

/** Which slot a profile opened from, and what that slot held then (OpenedProfile). */
export interface OwnSlot {
  readonly slot: number;
  readonly sealed: string;
}

/** Whether the profile opened from `own` has been crypto-erased since (its slot was overwritten). */
export function ownSlotErased(file: KeySlotFile, own: OwnSlot | undefined): boolean {
  return own !== undefined && own.slot >= 0 && file.slots[own.slot] !== own.sealed;
}

export async function hasDevice(storage: DeviceStorage): Promise<boolean> {
  return (await storage.read(KEY_SLOT_FILE)) !== undefined;
}

/** Writes a new key-slot file; refuses a folder that already has one. */
export async function createDevice(
  storage: DeviceStorage,
  options: {
    pin: string;
    real: NewProfile;
    duress?: { pin: string; decoy: NewProfile };
    limits?: KdfLimits;
    maxFailedUnlocks?: number;
  },
): Promise<void> {
  const file = createKeySlots(options);
  await storage.exclusive(async () => {
    if (await hasDevice(storage)) {
      throw new VolunteerError(
        "ALREADY_ENROLLED",
        "this folder already holds an enrolled device: use another --dir (a device enrolls once)",
      );
    }
    await storage.write(KEY_SLOT_FILE, serializeKeySlotFile(file));
  });
}

/**
 * Unlocks with `pin`, under the folder's exclusive lock (read, argon2id, write back: another
 * process's write cannot fall in between and be undone). A wrong PIN increments the failed-unlock
 * counter (the only change) and throws WrongPin. A right one: without `onUnlock`, the counter is
 * reset (written only if it was not 0); with `onUnlock`, the file it returns is written, always
 * (Volunteer.open: one durable write for every unlock, whichever PIN). The real PIN and the
 * duress PIN both succeed, indistinguishably for the caller's output; `slot` says which opened.
 */
export async function unlockDevice(
  storage: DeviceStorage,
  pin: string,
  onUnlock?: (file: KeySlotFile, opened: OpenedProfile) => Promise<KeySlotFile>,
): Promise<OpenedProfile> {
  return storage.exclusive(async () => {
    const file = await readKeySlots(storage);
    const unlocked = unlockKeySlots(file, pin);
    if (unlocked === undefined) {
      const failedUnlocks = file.failedUnlocks + 1;
      if (failedUnlocks >= file.maxFailedUnlocks) {
        // The limit: crypto-erase everything. Afterwards every PIN fails like a wrong PIN on a fresh device.
        await eraseDeviceLocked(storage);
        throw new WrongPin(0);
      }
      await storage.write(KEY_SLOT_FILE, serializeKeySlotFile({ ...file, failedUnlocks }));
      throw new WrongPin(file.maxFailedUnlocks - failedUnlocks);
    }
    const opened: OpenedProfile = {
      ...unlocked,
      store: new ProfileStore(storage, unlocked.dataKey, unlocked.profileId),
      sealed: file.slots[unlocked.slot] ?? "",
    };
    if (onUnlock !== undefined) {
      await writeKeySlots(storage, { ...(await onUnlock(file, opened)), failedUnlocks: 0 });
    } else if (file.failedUnlocks !== 0) {
      await storage.write(KEY_SLOT_FILE, serializeKeySlotFile({ ...file, failedUnlocks: 0 }));
    }
    return opened;
  });
}
/** The parsed key-slot file; NOT_ENROLLED when there is none, DAMAGED when it does not parse. */
export async function readKeySlots(storage: DeviceStorage): Promise<KeySlotFile> {
  const bytes = await storage.read(KEY_SLOT_FILE);
  if (bytes === undefined) {
    throw new VolunteerError(
      "NOT_ENROLLED",
      "no enrolled device in this folder: run `testigo volunteer enroll --dir DIR --invite CODE` first",
    );
  }
  try {
    return parseKeySlotFile(bytes);
  } catch (error) {
    throw new VolunteerError("DAMAGED", error instanceof Error ? error.message : "the key-slot file is damaged");
  }
}

export async function writeKeySlots(storage: DeviceStorage, file: KeySlotFile): Promise<void> {
  await storage.write(KEY_SLOT_FILE, serializeKeySlotFile(file));
}

/**
 * Crypto-erases the whole device, with no PIN (panic button, remote wipe, wrong-PIN limit): both
 * key slots and the capsule are overwritten with random bytes in one atomic write — from then on
 * nothing can be decrypted — and then every record file (keys, outbox, photo chunks, mailbox) is
 * deleted, in one batch with one folder sync (no per-file overwrite: they are ciphertext under
 * keys that are gone, NodeStorage.batch). The key-slot file stays, so the folder then answers any
 * PIN like a fresh device answers a wrong one. A damaged or missing key-slot file does not stop
 * the record files from going. Runs under the folder's exclusive lock.
 */
export async function eraseDevice(storage: DeviceStorage): Promise<void> {
  erasedHere.add(storage);
  await storage.exclusive(() => eraseDeviceLocked(storage));
}

/** Storages this process erased (wipe, revocation, panic): their erase is no other process's. */
const erasedHere = new WeakSet<DeviceStorage>();

/** Whether this process erased `storage` (eraseDevice), as opposed to another process. */
export function erasedByThisProcess(storage: DeviceStorage): boolean {
  return erasedHere.has(storage);
}

/** eraseDevice for a caller that holds the lock already. */
async function eraseDeviceLocked(storage: DeviceStorage): Promise<void> {
  let file: KeySlotFile | undefined;
  try {
    file = await readKeySlots(storage);
  } catch {
    file = undefined;
  }
  if (file !== undefined) await writeKeySlots(storage, eraseKeySlots(file));
  else await storage.delete(KEY_SLOT_FILE);
  await storage.batch([], await storage.list(RECORD_FILE_PREFIX));
}
