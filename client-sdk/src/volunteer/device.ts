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
import { ProfileStore } from "../storage/profile-store.js";
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
  if (await hasDevice(storage)) {
    throw new VolunteerError(
      "ALREADY_ENROLLED",
      "this folder already holds an enrolled device: use another --dir (a device enrolls once)",
    );
  }
  await storage.write(KEY_SLOT_FILE, serializeKeySlotFile(createKeySlots(options)));
}

/**
 * Unlocks with `pin`. A wrong PIN increments the failed-unlock counter (the only change) and
 * throws WrongPin; a right one resets the counter. The real PIN and the duress PIN both succeed,
 * indistinguishably for the caller's output; `slot` says which profile opened.
 */
export async function unlockDevice(storage: DeviceStorage, pin: string): Promise<OpenedProfile> {
  const file = await readKeySlots(storage);
  const unlocked = unlockKeySlots(file, pin);
  if (unlocked === undefined) {
    const failedUnlocks = file.failedUnlocks + 1;
    if (failedUnlocks >= file.maxFailedUnlocks) {
      // The limit: crypto-erase everything. Afterwards every PIN fails like a wrong PIN on a fresh device.
      await eraseDevice(storage);
      throw new WrongPin(0);
    }
    await storage.write(KEY_SLOT_FILE, serializeKeySlotFile({ ...file, failedUnlocks }));
    throw new WrongPin(file.maxFailedUnlocks - failedUnlocks);
  }
  if (file.failedUnlocks !== 0) {
    await storage.write(KEY_SLOT_FILE, serializeKeySlotFile({ ...file, failedUnlocks: 0 }));
  }
  return { ...unlocked, store: new ProfileStore(storage, unlocked.dataKey, unlocked.profileId) };
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
 * deleted. The key-slot file stays, so the folder then answers any PIN like a fresh device answers
 * a wrong one. A damaged or missing key-slot file does not stop the record files from going.
 */
export async function eraseDevice(storage: DeviceStorage): Promise<void> {
  let file: KeySlotFile | undefined;
  try {
    file = await readKeySlots(storage);
  } catch {
    file = undefined;
  }
  if (file !== undefined) await writeKeySlots(storage, eraseKeySlots(file));
  else await storage.delete(KEY_SLOT_FILE);
  await ProfileStore.destroyAll(storage);
}
