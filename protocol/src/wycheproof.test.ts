// Project Wycheproof conformance: every X25519, Ed25519, ChaCha20-Poly1305 and XChaCha20-Poly1305
// vector goes through the protocol's own wrappers (primitives.ts), not through libsodium directly,
// so that a wrapper's extra checks (lengths, the all-zero X25519 result) are tested too.
//
// The vectors live outside the repository, in ../shared/data/wycheproof/ beside its root (see
// SOURCES.md there for the pinned commit). CI always has them: there, their absence is a failure.
// On a developer machine without them the suite is skipped with a message saying why.
//
// Meaning of Wycheproof's results for our functions:
// - valid: accepted. X25519 returns exactly `shared`; Ed25519 verifies; AEAD encryption gives
//   exactly ct || tag and decryption gives back msg.
// - invalid: rejected. ed25519Verify returns false; the AEAD decrypt wrappers return undefined
//   (and, for a nonce of the wrong length, the encrypt wrappers throw: libsodium refuses them).
// - acceptable (X25519 only: low-order, twist and non-canonical public keys). We assert exactly
//   what libsodium does, so a change of behaviour is noticed:
//   * flag ZeroSharedSecret (the public key has low order, so the "shared secret" is all zeros
//     and not secret at all): x25519() returns undefined, i.e. rejects. libsodium itself refuses
//     these (small-order blocklist and all-zero output check); our wrapper also maps any all-zero
//     result to undefined, so callers never derive a key from a public value.
//   * every other acceptable case (a public key on the twist, or a non-canonical u-coordinate
//     >= 2^255 - 19 that is reduced modulo p, per RFC 7748): accepted, and the result must equal
//     `shared`. Such keys cannot make the secret predictable, and RFC 7748 says to accept them.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { bytesEqual, fromHex, toHex } from "./bytes.js";
import {
  AEAD_TAG_BYTES,
  CHACHA_IETF_NONCE_BYTES,
  chachaIetfDecrypt,
  chachaIetfEncrypt,
  ed25519Verify,
  XCHACHA_NONCE_BYTES,
  x25519,
  xchachaDecrypt,
  xchachaEncrypt,
} from "./primitives.js";
import { initSodium } from "./sodium.js";

/** The repository root: the nearest ancestor of this file holding a package.json with workspaces. */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && "workspaces" in JSON.parse(readFileSync(manifest, "utf8"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("wycheproof.test: cannot find the repository root above this file");
    dir = parent;
  }
}

const VECTOR_DIR = resolve(repositoryRoot(), "..", "shared", "data", "wycheproof");
const FILES = {
  x25519: "x25519_test.json",
  ed25519: "ed25519_test.json",
  chacha: "chacha20_poly1305_test.json",
  xchacha: "xchacha20_poly1305_test.json",
} as const;

// The exact counts of the pinned files (SOURCES.md). A parsing bug that drops vectors, or a
// silently different data set, fails here instead of passing on fewer vectors.
const EXPECTED = {
  x25519: { valid: 264, invalid: 0, acceptable: 254 },
  ed25519: { valid: 88, invalid: 63, acceptable: 0 },
  chacha: { valid: 256, invalid: 69, acceptable: 0 },
  xchacha: { valid: 246, invalid: 69, acceptable: 0 },
} as const;

const missing = Object.values(FILES).filter((file) => !existsSync(join(VECTOR_DIR, file)));
if (missing.length > 0 && process.env.CI) {
  // CI always provides the vectors: their absence must not turn into a green run.
  throw new Error(`wycheproof.test: vectors missing in CI: ${missing.join(", ")} not found in ${VECTOR_DIR}`);
}
const skip =
  missing.length > 0
    ? `Wycheproof vectors not found in ${VECTOR_DIR} (missing ${missing.join(", ")}); CI always has them`
    : false;

const hex = z
  .string()
  .regex(/^(?:[0-9a-f]{2})*$/)
  .transform((text) => fromHex(text));
const result = z.enum(["valid", "invalid", "acceptable"]);
type Result = z.infer<typeof result>;

function vectorFile<T extends z.ZodType>(group: T) {
  return z.object({ numberOfTests: z.number().int().positive(), testGroups: z.array(group).min(1) });
}

const x25519File = vectorFile(
  z.object({
    curve: z.literal("curve25519"),
    tests: z.array(
      z.object({ tcId: z.number(), flags: z.array(z.string()), public: hex, private: hex, shared: hex, result }),
    ),
  }),
);

const ed25519File = vectorFile(
  z.object({
    publicKey: z.object({ curve: z.literal("edwards25519"), pk: hex }),
    tests: z.array(z.object({ tcId: z.number(), flags: z.array(z.string()), msg: hex, sig: hex, result })),
  }),
);

const aeadFile = vectorFile(
  z.object({
    ivSize: z.number().int(),
    keySize: z.literal(256),
    tagSize: z.literal(128),
    tests: z.array(
      z.object({
        tcId: z.number(),
        flags: z.array(z.string()),
        key: hex,
        iv: hex,
        aad: hex,
        msg: hex,
        ct: hex,
        tag: hex,
        result,
      }),
    ),
  }),
);

function load<T extends z.ZodType>(name: string, schema: T): z.infer<T> {
  return schema.parse(JSON.parse(readFileSync(join(VECTOR_DIR, name), "utf8")));
}

/** Tallies how many vectors of each result ran, and which ones failed (by tcId and reason). */
class Tally {
  readonly ran: Record<Result, number> = { valid: 0, invalid: 0, acceptable: 0 };
  readonly failures: string[] = [];

  record(tcId: number, outcome: Result, failure: string | undefined): void {
    this.ran[outcome] += 1;
    if (failure !== undefined) this.failures.push(`tcId ${tcId} (${outcome}): ${failure}`);
  }

  check(numberOfTests: number, expected: Readonly<Record<Result, number>>): void {
    assert.deepEqual(this.failures, []);
    assert.deepEqual(this.ran, expected);
    assert.equal(this.ran.valid + this.ran.invalid + this.ran.acceptable, numberOfTests);
  }
}

function throws(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch {
    return true;
  }
}

type AeadEncrypt = typeof xchachaEncrypt;
type AeadDecrypt = typeof xchachaDecrypt;

function runAead(
  file: z.infer<typeof aeadFile>,
  nonceBytes: number,
  encrypt: AeadEncrypt,
  decrypt: AeadDecrypt,
): { tally: Tally; badNonces: number } {
  const tally = new Tally();
  let badNonces = 0;
  for (const group of file.testGroups) {
    for (const t of group.tests) {
      const sealed = new Uint8Array([...t.ct, ...t.tag]);
      let failure: string | undefined;
      if (t.result === "valid") {
        const encrypted = encrypt(t.msg, t.aad, t.iv, t.key);
        const opened = decrypt(sealed, t.aad, t.iv, t.key);
        if (!bytesEqual(encrypted, sealed)) failure = "encryption differs from ct || tag";
        else if (opened === undefined || !bytesEqual(opened, t.msg)) failure = "decryption did not return msg";
      } else {
        if (decrypt(sealed, t.aad, t.iv, t.key) !== undefined) failure = "decryption accepted an invalid vector";
        // A wrong-length nonce is invalid for the construction itself: libsodium (and therefore
        // our encrypt wrapper) refuses to encrypt with it rather than truncating or padding it.
        if (t.iv.length !== nonceBytes) {
          badNonces += 1;
          if (!throws(() => encrypt(t.msg, t.aad, t.iv, t.key))) failure = "encryption accepted a bad nonce length";
        }
      }
      tally.record(t.tcId, t.result, failure);
    }
  }
  return { tally, badNonces };
}

describe("Wycheproof", { skip }, () => {
  before(async () => {
    await initSodium();
  });

  it("X25519: valid vectors give the shared secret; zero shared secrets are refused; others match", () => {
    const file = load(FILES.x25519, x25519File);
    const tally = new Tally();
    let refused = 0;
    for (const group of file.testGroups) {
      for (const t of group.tests) {
        const shared = x25519(t.private, t.public);
        const zero = t.flags.includes("ZeroSharedSecret");
        let failure: string | undefined;
        if (t.result === "invalid") {
          if (shared !== undefined) failure = "accepted";
        } else if (t.result === "acceptable" && zero) {
          if (shared !== undefined) failure = `accepted a zero shared secret: ${toHex(shared)}`;
          else refused += 1;
        } else if (shared === undefined) {
          failure = "refused";
        } else if (!bytesEqual(shared, t.shared)) {
          failure = `got ${toHex(shared)}, expected ${toHex(t.shared)}`;
        }
        tally.record(t.tcId, t.result, failure);
      }
    }
    tally.check(file.numberOfTests, EXPECTED.x25519);
    // 31 vectors carry ZeroSharedSecret in the pinned file; all of them must have been refused.
    assert.equal(refused, 31);
  });

  it("Ed25519: valid signatures verify, invalid ones (malleable, non-canonical, truncated...) do not", () => {
    const file = load(FILES.ed25519, ed25519File);
    const tally = new Tally();
    for (const group of file.testGroups) {
      for (const t of group.tests) {
        const ok = ed25519Verify(t.sig, t.msg, group.publicKey.pk);
        const want = t.result === "valid";
        tally.record(t.tcId, t.result, ok === want ? undefined : ok ? "verified" : "did not verify");
      }
    }
    tally.check(file.numberOfTests, EXPECTED.ed25519);
  });

  it("ChaCha20-Poly1305 (IETF, 96-bit nonce): exact ciphertexts, every forgery and bad nonce refused", () => {
    const file = load(FILES.chacha, aeadFile);
    const { tally, badNonces } = runAead(file, CHACHA_IETF_NONCE_BYTES, chachaIetfEncrypt, chachaIetfDecrypt);
    tally.check(file.numberOfTests, EXPECTED.chacha);
    assert.equal(badNonces, 9);
  });

  it("XChaCha20-Poly1305 (192-bit nonce): exact ciphertexts, every forgery and bad nonce refused", () => {
    const file = load(FILES.xchacha, aeadFile);
    const { tally, badNonces } = runAead(file, XCHACHA_NONCE_BYTES, xchachaEncrypt, xchachaDecrypt);
    tally.check(file.numberOfTests, EXPECTED.xchacha);
    assert.equal(badNonces, 9);
  });

  it("AEAD decryption refuses anything shorter than a tag", () => {
    const key = new Uint8Array(32);
    for (let length = 0; length < AEAD_TAG_BYTES; length++) {
      const short = new Uint8Array(length);
      assert.equal(xchachaDecrypt(short, new Uint8Array(), new Uint8Array(XCHACHA_NONCE_BYTES), key), undefined);
      assert.equal(chachaIetfDecrypt(short, new Uint8Array(), new Uint8Array(CHACHA_IETF_NONCE_BYTES), key), undefined);
    }
  });
});
