// The volunteer device's key-slot file on a DeviceStorage: create it at enrollment, unlock it with
// a PIN. Two slots always: the real profile under the PIN, and the decoy profile under the duress
// PIN when one is given (random bytes otherwise), so the file never says whether a duress PIN
// exists. No I/O of its own: storage is passed in.
import {
  createKeySlots,
  type KdfLimits,
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
 * Failed unlocks allowed in a row. The counter is kept (in clear) in the key-slot file so it can
 * be read before unlocking; what happens at the limit (erasing the device) is issue 5's.
 */
export const MAX_FAILED_UNLOCKS = 10;

export interface OpenedProfile extends UnlockedProfile {
  readonly store: ProfileStore;
}

export async function hasDevice(storage: DeviceStorage): Promise<boolean> {
  return (await storage.read(KEY_SLOT_FILE)) !== undefined;
}

/** Writes a new key-slot file; refuses a folder that already has one. */
export async function createDevice(
  storage: DeviceStorage,
  options: { pin: string; real: NewProfile; duress?: { pin: string; decoy: NewProfile }; limits?: KdfLimits },
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
  const bytes = await storage.read(KEY_SLOT_FILE);
  if (bytes === undefined) {
    throw new VolunteerError(
      "NOT_ENROLLED",
      "no enrolled device in this folder: run `testigo volunteer enroll --dir DIR --invite CODE` first",
    );
  }
  let file: ReturnType<typeof parseKeySlotFile>;
  try {
    file = parseKeySlotFile(bytes);
  } catch (error) {
    throw new VolunteerError("DAMAGED", error instanceof Error ? error.message : "the key-slot file is damaged");
  }
  const unlocked = unlockKeySlots(file, pin);
  if (unlocked === undefined) {
    const failedUnlocks = file.failedUnlocks + 1;
    await storage.write(KEY_SLOT_FILE, serializeKeySlotFile({ ...file, failedUnlocks }));
    throw new WrongPin(Math.max(0, MAX_FAILED_UNLOCKS - failedUnlocks));
  }
  if (file.failedUnlocks !== 0) {
    await storage.write(KEY_SLOT_FILE, serializeKeySlotFile({ ...file, failedUnlocks: 0 }));
  }
  return { ...unlocked, store: new ProfileStore(storage, unlocked.dataKey, unlocked.profileId) };
}
