import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { API, apiPath, sessionRequest, sessionResponse } from "./api/index.js";
import {
  type AuthStatement,
  authMessage,
  newChallenge,
  openSessionToken,
  SESSION_TOKEN_LENGTH,
  type SessionClaims,
  sealSessionToken,
  signAuthStatement,
  signEnrollment,
  verifyAuthStatement,
  verifyEnrollment,
} from "./auth.js";
import { fromBase64url, randomBytes, toBase64url } from "./bytes.js";
import { campaignIdFromRootKey, generateSigningKeyPair } from "./keys.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

function statement(): AuthStatement {
  return {
    campaignId: campaignIdFromRootKey(generateSigningKeyPair().publicKey),
    role: "coordinator",
    principal: "laptop-1",
    challenge: newChallenge(),
  };
}

describe("authMessage", () => {
  it("is injective: shifting bytes between fields changes the encoding", () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (a, b) => {
        const base = statement();
        const x = authMessage({ ...base, campaignId: a, principal: b });
        const y = authMessage({ ...base, campaignId: a + b, principal: "" });
        assert.notDeepEqual(x, y);
      }),
    );
  });

  it("refuses a challenge of the wrong size", () => {
    assert.throws(() => authMessage({ ...statement(), challenge: toBase64url(new Uint8Array(31)) }), {
      code: "MALFORMED",
    });
  });
});

describe("auth signatures", () => {
  it("verify only for the same statement and key", () => {
    const keys = generateSigningKeyPair();
    const s = statement();
    const sig = signAuthStatement(s, keys.privateKey);
    assert.equal(verifyAuthStatement(s, sig, keys.publicKey), true);
    assert.equal(verifyAuthStatement({ ...s, role: "volunteer" }, sig, keys.publicKey), false);
    assert.equal(verifyAuthStatement({ ...s, principal: "laptop-2" }, sig, keys.publicKey), false);
    assert.equal(verifyAuthStatement({ ...s, challenge: newChallenge() }, sig, keys.publicKey), false);
    assert.equal(verifyAuthStatement(s, sig, generateSigningKeyPair().publicKey), false);
    assert.equal(verifyAuthStatement(s, "not base64!", keys.publicKey), false);
    assert.equal(verifyAuthStatement({ ...s, challenge: "AAAA" }, sig, keys.publicKey), false);
  });

  it("a session request built from them passes the wire schema", () => {
    const keys = generateSigningKeyPair();
    const s = statement();
    const parsed = sessionRequest.safeParse({ ...s, signature: signAuthStatement(s, keys.privateKey) });
    assert.equal(parsed.success, true);
    assert.equal(sessionRequest.safeParse({ ...s, signature: "x" }).success, false);
    assert.equal(sessionRequest.safeParse({ ...s, role: "operator", signature: "x" }).success, false);
  });
});

describe("session tokens", () => {
  const key = () => randomBytes(32);
  // Built in a hook: libsodium is ready only once the top-level `before` has run.
  let claims: SessionClaims;
  before(() => {
    claims = {
      role: "volunteer",
      campaignId: campaignIdFromRootKey(generateSigningKeyPair().publicKey),
      principal: "v-0123456789ABCDEF",
      expiresAt: 1_900_000_000_123,
    };
  });

  it("round-trip their claims under the relay's key, one length for every token", () => {
    const k = key();
    const a = sealSessionToken(claims, k);
    const coordinator = { ...claims, role: "coordinator" as const, principal: "d".repeat(64) };
    const b = sealSessionToken(coordinator, k);
    assert.deepEqual(openSessionToken(a, k), claims);
    assert.deepEqual(openSessionToken(b, k), coordinator);
    assert.equal(a.length, SESSION_TOKEN_LENGTH);
    assert.equal(b.length, SESSION_TOKEN_LENGTH);
    assert.match(a, /^[A-Za-z0-9_-]+$/);
    assert.equal(sessionResponse.safeParse({ token: a, expiresAt: claims.expiresAt }).success, true);
    // A fresh nonce per token: the same claims never give the same token.
    assert.notEqual(sealSessionToken(claims, k), a);
  });

  it("refuse another key, any flipped bit, truncation and junk, without throwing", () => {
    const k = key();
    const token = sealSessionToken(claims, k);
    assert.equal(openSessionToken(token, key()), undefined);
    const bytes = fromBase64url(token) ?? new Uint8Array();
    for (const index of [0, 23, 24, 60, bytes.length - 1]) {
      const flipped = new Uint8Array(bytes);
      flipped[index] = (flipped[index] ?? 0) ^ 1;
      assert.equal(openSessionToken(toBase64url(flipped), k), undefined, `bit flipped at ${index}`);
    }
    for (const junk of ["", "short", token.slice(1), `${token}A`, "!".repeat(SESSION_TOKEN_LENGTH)]) {
      assert.equal(openSessionToken(junk, k), undefined);
    }
    fc.assert(fc.property(fc.string(), (text) => openSessionToken(text, k) === undefined));
  });

  it("refuse claims that do not fit", () => {
    assert.throws(() => sealSessionToken({ ...claims, principal: "x".repeat(200) }, key()), { code: "MALFORMED" });
    assert.throws(() => sealSessionToken(claims, new Uint8Array(16)), { code: "MALFORMED" });
  });
});

describe("apiPath", () => {
  it("fills and encodes parameters", () => {
    assert.equal(
      apiPath(API.putChunk, { campaignId: "abc", photoId: "p/q", index: 3 }),
      "/v1/campaigns/abc/photos/p%2Fq/chunks/3",
    );
    assert.throws(() => apiPath(API.putChunk, { campaignId: "abc" }), { code: "MALFORMED" });
  });
});

describe("enrollment proof of possession", () => {
  it("verifies only for the same token and keys", async () => {
    const { randomBytes } = await import("./bytes.js");
    const signing = generateSigningKeyPair();
    const token = randomBytes(32);
    const enc = randomBytes(32);
    const sig = signEnrollment(token, signing.publicKey, enc, signing.privateKey);
    const bytes = fromBase64url(sig) ?? new Uint8Array();
    assert.equal(verifyEnrollment(token, signing.publicKey, enc, bytes), true);
    assert.equal(verifyEnrollment(randomBytes(32), signing.publicKey, enc, bytes), false);
    assert.equal(verifyEnrollment(token, signing.publicKey, randomBytes(32), bytes), false);
    assert.equal(verifyEnrollment(token.subarray(1), signing.publicKey, enc, bytes), false);
  });
});
