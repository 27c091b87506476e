// Proof of possession of the duress key D (issue 5 review): at the relay (`duressSignature`, over
// the enroll message) and to the coordinators (the `enrolled` report's `duressProof`, over
// campaign ‖ S ‖ E). Without them a relay that saw a victim's keys could announce them as its own
// device's duress key.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { enrollRequest } from "./api/invites.js";
import {
  duressProofMessage,
  enrollMessage,
  signDuressProof,
  signEnrollment,
  signEnrollmentDuress,
  verifyDuressProof,
  verifyEnrollmentDuress,
} from "./auth.js";
import { concatBytes, fromBase64url, randomBytes, toBase64url, toHex, u32be, utf8 } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { campaignIdFromRootKey, generateDeviceKeys, generateSigningKeyPair, signWithDomain } from "./keys.js";
import { innerMessage, REPORT_KIND } from "./report.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

const bytes = (text: string) => fromBase64url(text) ?? new Uint8Array();

function volunteer() {
  const campaignId = campaignIdFromRootKey(generateSigningKeyPair().publicKey);
  const keys = generateDeviceKeys();
  const duress = generateSigningKeyPair();
  const proof = bytes(
    signDuressProof(campaignId, keys.signing.publicKey, keys.encryption.publicKey, duress.privateKey),
  );
  return { campaignId, keys, duress, proof };
}

describe("the enrolled report's duress proof", () => {
  it("encodes campaign id, signing key and encryption key as length-prefixed fields", () => {
    const s = new Uint8Array(32).fill(1);
    const e = new Uint8Array(32).fill(2);
    assert.equal(
      toHex(duressProofMessage("AAAAAAAAAAAAAAAAAAAAAA", s, e)),
      toHex(concatBytes(u32be(22), utf8("AAAAAAAAAAAAAAAAAAAAAA"), u32be(32), s, u32be(32), e)),
    );
    assert.throws(() => duressProofMessage("x", s.subarray(1), e), { code: "MALFORMED" });
  });

  it("verifies under D for the same campaign, signing key and encryption key", () => {
    const { campaignId, keys, duress, proof } = volunteer();
    assert.equal(
      verifyDuressProof(campaignId, keys.signing.publicKey, keys.encryption.publicKey, duress.publicKey, proof),
      true,
    );
  });

  it("fails under another key: a key announced without its private half, or the signing key", () => {
    const { campaignId, keys, duress, proof } = volunteer();
    const s = keys.signing.publicKey;
    const e = keys.encryption.publicKey;
    // The hijack: the victim's signing key announced as D, the proof made with the thief's own D.
    const victim = generateSigningKeyPair();
    assert.equal(verifyDuressProof(campaignId, s, e, victim.publicKey, proof), false);
    // Signed by S instead of D.
    const bySigningKey = bytes(signDuressProof(campaignId, s, e, keys.signing.privateKey));
    assert.equal(verifyDuressProof(campaignId, s, e, duress.publicKey, bySigningKey), false);
    assert.equal(verifyDuressProof(campaignId, s, e, duress.publicKey, randomBytes(64)), false);
    assert.equal(verifyDuressProof(campaignId, s, e, duress.publicKey, proof.subarray(1)), false);
    assert.equal(verifyDuressProof(campaignId, s, e, duress.publicKey.subarray(1), proof), false);
  });

  it("fails for another campaign, other keys, or the signing and encryption keys swapped", () => {
    const { campaignId, keys, duress, proof } = volunteer();
    const s = keys.signing.publicKey;
    const e = keys.encryption.publicKey;
    const d = duress.publicKey;
    const otherCampaign = campaignIdFromRootKey(generateSigningKeyPair().publicKey);
    assert.equal(verifyDuressProof(otherCampaign, s, e, d, proof), false);
    assert.equal(verifyDuressProof(campaignId, generateSigningKeyPair().publicKey, e, d, proof), false);
    assert.equal(verifyDuressProof(campaignId, s, randomBytes(32), d, proof), false);
    assert.equal(verifyDuressProof(campaignId, e, s, d, proof), false);
  });

  it("is domain-separated from D's enrollment signature and from the enrollment signature", () => {
    const { campaignId, keys, duress } = volunteer();
    const s = keys.signing.publicKey;
    const e = keys.encryption.publicKey;
    const message = duressProofMessage(campaignId, s, e);
    // The same bytes signed by D under any other label are no proof.
    for (const label of [DOMAIN.enrollDuressSignature, DOMAIN.enrollSignature, DOMAIN.authSignature]) {
      const signature = signWithDomain(label, message, duress.privateKey);
      assert.equal(verifyDuressProof(campaignId, s, e, duress.publicKey, signature), false, label);
    }
  });
});

describe("the relay's duress signature (enroll request)", () => {
  it("verifies under D only, over the enroll message with D in it", () => {
    const { keys, duress } = volunteer();
    const token = randomBytes(32);
    const s = keys.signing.publicKey;
    const e = keys.encryption.publicKey;
    const d = duress.publicKey;
    const signature = bytes(signEnrollmentDuress(token, s, e, d, duress.privateKey));
    assert.equal(verifyEnrollmentDuress(token, s, e, d, signature), true);
    assert.equal(verifyEnrollmentDuress(randomBytes(32), s, e, d, signature), false);
    assert.equal(verifyEnrollmentDuress(token, s, randomBytes(32), d, signature), false);
    assert.equal(verifyEnrollmentDuress(token, e, s, d, signature), false);
    // A victim's public key announced as D: no signature the thief can make verifies under it.
    const victim = generateSigningKeyPair().publicKey;
    const byThief = bytes(signEnrollmentDuress(token, s, e, victim, duress.privateKey));
    assert.equal(verifyEnrollmentDuress(token, s, e, victim, byThief), false);
    // The signing key's enrollment signature over the same bytes is not D's.
    const bySigningKey = bytes(signEnrollment(token, s, e, keys.signing.privateKey, d));
    assert.equal(verifyEnrollmentDuress(token, s, e, d, bySigningKey), false);
    // D's signature under the enrollment label is not accepted either.
    const wrongLabel = signWithDomain(DOMAIN.enrollSignature, enrollMessage(token, s, e, d), duress.privateKey);
    assert.equal(verifyEnrollmentDuress(token, s, e, d, wrongLabel), false);
  });

  it("the enroll request takes duressKey and duressSignature together or neither", () => {
    const { keys, duress } = volunteer();
    const token = randomBytes(32);
    const s = keys.signing.publicKey;
    const e = keys.encryption.publicKey;
    const base = {
      redeemToken: toBase64url(token),
      signingKey: toBase64url(s),
      encryptionKey: toBase64url(e),
      signature: signEnrollment(token, s, e, keys.signing.privateKey, duress.publicKey),
    };
    const duressSignature = signEnrollmentDuress(token, s, e, duress.publicKey, duress.privateKey);
    const duressKey = toBase64url(duress.publicKey);
    assert.equal(enrollRequest.safeParse({ ...base, duressKey, duressSignature }).success, true);
    assert.equal(enrollRequest.safeParse(base).success, true);
    assert.equal(enrollRequest.safeParse({ ...base, duressKey }).success, false);
    assert.equal(enrollRequest.safeParse({ ...base, duressSignature }).success, false);
  });
});

describe("the enrolled report's schema", () => {
  it("carries duressProof only beside duressKey", () => {
    const { campaignId, keys, duress, proof } = volunteer();
    const enrolled = {
      v: 1,
      kind: REPORT_KIND.enrolled,
      messageId: toBase64url(randomBytes(16)),
      campaignId,
      seq: 0,
      sentAt: 1_700_000_000_000,
      table: "0",
      text: "",
      invite: {
        nonce: toBase64url(randomBytes(8)),
        storedHash: toBase64url(randomBytes(32)),
        proof: toBase64url(randomBytes(32)),
      },
      encryptionKey: toBase64url(keys.encryption.publicKey),
    };
    const duressKey = toBase64url(duress.publicKey);
    const duressProof = toBase64url(proof);
    assert.equal(innerMessage.safeParse({ ...enrolled, duressKey, duressProof }).success, true);
    // Without the proof it still parses: coordinators register the signing key without D (alert).
    assert.equal(innerMessage.safeParse({ ...enrolled, duressKey }).success, true);
    assert.equal(innerMessage.safeParse({ ...enrolled, duressProof }).success, false);
    assert.equal(innerMessage.safeParse({ ...enrolled, duressKey, duressProof: "short" }).success, false);
  });
});
