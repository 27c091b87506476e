import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { fromHex, randomBytes, toHex } from "./bytes.js";
import {
  deriveInviteSecret,
  INVITE_NONCE_BYTES,
  inviteNonceOf,
  isCampaignInviteSecret,
  newInviteSecret,
} from "./invite-secret.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

describe("invite secrets", () => {
  // Expected value computed independently with Python: nonce + hashlib.blake2b(label + b"\\x00" + nonce,
  // key=key, digest_size=16).digest()[:8].
  it("matches the fixed vector: nonce || BLAKE2b-128(key, label || 0x00 || nonce)[0..8]", () => {
    const key = new Uint8Array(32).fill(7);
    const nonce = fromHex("0001020304050607");
    const secret = deriveInviteSecret(key, nonce);
    assert.equal(toHex(secret), "00010203040506078a9f58031922a4c4");
    assert.deepEqual(inviteNonceOf(secret), nonce);
  });

  it("every coordinator with the invite key recognises the campaign's secrets, and only those", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 127 }), (key, bit) => {
        const secret = newInviteSecret(key);
        assert.equal(secret.length, 16);
        assert.equal(isCampaignInviteSecret(key, secret), true);
        assert.deepEqual(deriveInviteSecret(key, inviteNonceOf(secret)), secret);
        const flipped = secret.slice();
        flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        assert.equal(isCampaignInviteSecret(key, flipped), false);
        assert.equal(isCampaignInviteSecret(randomBytes(32), secret), false);
      }),
      { numRuns: 200 },
    );
    assert.equal(INVITE_NONCE_BYTES, 8);
  });
});
