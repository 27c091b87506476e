import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { fromBase64url, fromHex, randomBytes, toBase64url } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import {
  campaignIdFromRootKey,
  generateDeviceKeys,
  generateSigningKeyPair,
  PSEUDONYM_PATTERN,
  pseudonymFromKeys,
  publicKeysOf,
  signWithDomain,
  toCrockfordBase32,
  verifyWithDomain,
} from "./keys.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

describe("randomBytes", () => {
  it("fills every byte, past one getRandomValues call (64 KiB), and never repeats itself", () => {
    assert.equal(randomBytes(0).length, 0);
    const big = randomBytes(65_536 * 2 + 100);
    assert.equal(big.length, 65_536 * 2 + 100);
    // Each 4 KiB slice holds some non-zero byte (all zeros: probability 2^-32768).
    for (let offset = 0; offset < big.length; offset += 4096) {
      assert.ok(
        big.subarray(offset, offset + 4096).some((byte) => byte !== 0),
        `slice at ${offset} is all zeros`,
      );
    }
    assert.notDeepEqual(randomBytes(32), randomBytes(32));
    assert.throws(() => randomBytes(-1));
    assert.throws(() => randomBytes(1.5));
  });
});

describe("base64url", () => {
  it("round-trips any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        assert.deepEqual(fromBase64url(toBase64url(bytes)), bytes);
      }),
    );
  });

  it("rejects padding, the standard alphabet and non-canonical trailing bits", () => {
    for (const bad of ["AA==", "a+b/", "AB", "A", "?", "AAA ", "AQ=", "AR"]) {
      assert.equal(fromBase64url(bad), undefined, bad);
    }
    assert.deepEqual(fromBase64url("AQ"), new Uint8Array([1]));
  });
});

describe("Crockford base32", () => {
  it("encodes RFC 4648 test strings in the Crockford alphabet", () => {
    // RFC 4648 "foobar" in base32 is MZXW6YTBOI; mapped to Crockford's alphabet:
    assert.equal(toCrockfordBase32(new TextEncoder().encode("foobar")), "CSQPYRK1E8");
    assert.equal(toCrockfordBase32(new Uint8Array([])), "");
    assert.equal(toCrockfordBase32(fromHex("ff")), "ZW");
  });
});

describe("keys", () => {
  it("derives the same keys, campaign id and pseudonym from the same seeds", () => {
    const seeds = { encryption: new Uint8Array(32).fill(1), signing: new Uint8Array(32).fill(2) };
    const a = generateDeviceKeys(seeds);
    const b = generateDeviceKeys(seeds);
    assert.deepEqual(a, b);
    const pseudonym = pseudonymFromKeys(publicKeysOf(a));
    assert.match(pseudonym, PSEUDONYM_PATTERN);
    assert.equal(pseudonym, pseudonymFromKeys(publicKeysOf(b)));
    assert.equal(fromBase64url(campaignIdFromRootKey(a.signing.publicKey))?.length, 16);
  });

  it("pseudonyms of different devices differ", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) seen.add(pseudonymFromKeys(publicKeysOf(generateDeviceKeys())));
    assert.equal(seen.size, 50);
  });

  it("a signature verifies only under its own domain, message and key", () => {
    const pair = generateSigningKeyPair();
    const other = generateSigningKeyPair();
    const message = new TextEncoder().encode("hello");
    const sig = signWithDomain(DOMAIN.rosterSignature, message, pair.privateKey);
    assert.equal(verifyWithDomain(DOMAIN.rosterSignature, message, sig, pair.publicKey), true);
    assert.equal(verifyWithDomain(DOMAIN.reportSignature, message, sig, pair.publicKey), false);
    assert.equal(verifyWithDomain(DOMAIN.rosterSignature, message, sig, other.publicKey), false);
    assert.equal(verifyWithDomain(DOMAIN.rosterSignature, new Uint8Array([1]), sig, pair.publicKey), false);
    assert.equal(verifyWithDomain(DOMAIN.rosterSignature, message, sig.subarray(1), pair.publicKey), false);
  });
});
