// The one module that chooses the libsodium build. Every primitive the protocol uses comes
// from here, so a faster backend with the same API (sodium-native, same libsodium) could be
// swapped in without touching callers.
//
// We use the "sumo" build of libsodium-wrappers because the standard build lacks
// crypto_pwhash (argon2id, for PINs and passphrases) and crypto_hash_sha256 (photo digests).
import sodiumModule from "libsodium-wrappers-sumo";
import { SodiumNotReady } from "./errors.js";

export type Sodium = typeof sodiumModule;

let readySodium: Sodium | undefined;

/** Resolves once libsodium's WebAssembly is loaded. Call (and await) before any other function. */
export async function initSodium(): Promise<Sodium> {
  if (readySodium === undefined) {
    await sodiumModule.ready;
    readySodium = sodiumModule;
  }
  return readySodium;
}

/** The loaded library. Throws SodiumNotReady (a programming error) if `initSodium()` has not completed. */
export function sodium(): Sodium {
  if (readySodium === undefined) {
    throw new SodiumNotReady();
  }
  return readySodium;
}
