// The coordinator device's keys at rest: a key-slot file (one passphrase slot, the other random)
// protecting the data key of a ProfileStore. No I/O of its own: storage is passed in.
import {
  createKeySlots,
  type KdfLimits,
  newProfile,
  parseKeySlotFile,
  serializeKeySlotFile,
  unlockKeySlots,
} from "../crypto/key-slots.js";
import { ProfileStore } from "../storage/profile-store.js";
import type { DeviceStorage } from "../storage/storage.js";
import { CoordinatorError } from "./errors.js";

export const KEY_SLOT_FILE = "keyslots.json";
/** A coordinator's laptop key file can be copied and attacked offline: longer than a phone PIN. */
export const MIN_PASSPHRASE_LENGTH = 8;

export function assertPassphraseAcceptable(passphrase: string): void {
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw new CoordinatorError(
      "WEAK_PASSPHRASE",
      `a coordinator passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters`,
    );
  }
}

export async function isInitialised(storage: DeviceStorage): Promise<boolean> {
  return (await storage.read(KEY_SLOT_FILE)) !== undefined;
}

/** Creates the key slots and returns the empty store; refuses a folder that already has keys. */
export async function createVault(
  storage: DeviceStorage,
  passphrase: string,
  limits?: KdfLimits,
): Promise<ProfileStore> {
  assertPassphraseAcceptable(passphrase);
  if (await isInitialised(storage)) {
    throw new CoordinatorError(
      "ALREADY_INITIALISED",
      "this folder already holds a coordinator device: use another --dir",
    );
  }
  const profile = newProfile();
  const file = createKeySlots({ pin: passphrase, real: profile, ...(limits === undefined ? {} : { limits }) });
  await storage.write(KEY_SLOT_FILE, serializeKeySlotFile(file));
  return new ProfileStore(storage, profile.dataKey, profile.profileId);
}

/** Unlocks the store with the passphrase; counts failed attempts in the key-slot file. */
export async function openVault(storage: DeviceStorage, passphrase: string): Promise<ProfileStore> {
  const bytes = await storage.read(KEY_SLOT_FILE);
  if (bytes === undefined) {
    throw new CoordinatorError(
      "NOT_INITIALISED",
      "this folder holds no coordinator device: run `testigo coordinator init` (or `join`) first, or check --dir",
    );
  }
  const file = parseKeySlotFile(bytes);
  const unlocked = unlockKeySlots(file, passphrase);
  if (unlocked === undefined) {
    await storage.write(KEY_SLOT_FILE, serializeKeySlotFile({ ...file, failedUnlocks: file.failedUnlocks + 1 }));
    throw new CoordinatorError("WRONG_PASSPHRASE", "wrong passphrase: nothing was changed");
  }
  if (file.failedUnlocks !== 0) {
    await storage.write(KEY_SLOT_FILE, serializeKeySlotFile({ ...file, failedUnlocks: 0 }));
  }
  return new ProfileStore(storage, unlocked.dataKey, unlocked.profileId);
}
