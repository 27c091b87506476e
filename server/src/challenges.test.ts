import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CHALLENGE_BYTES,
  CHALLENGE_TTL_MS,
  fromBase64url,
  initSodium,
  randomBytes,
  toBase64url,
} from "@testigo/protocol";
import { checkChallenge, issueChallenge } from "./challenges.js";

await initSodium();
const NOW = Date.UTC(2026, 10, 23, 18, 0, 0);

describe("stateless challenges", () => {
  const key = randomBytes(32);

  it("are 32 opaque bytes that this relay recognises until they expire", () => {
    const { challenge, expiresAt } = issueChallenge(key, NOW);
    assert.equal(fromBase64url(challenge)?.length, CHALLENGE_BYTES);
    assert.ok(expiresAt >= NOW + CHALLENGE_TTL_MS && expiresAt < NOW + CHALLENGE_TTL_MS + 10_000);
    assert.equal(expiresAt % 10_000, 0, "expiries are whole 10 s");
    assert.equal(checkChallenge(key, challenge, NOW), expiresAt);
    assert.equal(checkChallenge(key, challenge, expiresAt - 1), expiresAt);
    assert.equal(checkChallenge(key, challenge, expiresAt), undefined, "expired");
  });

  it("differ every time", () => {
    const seen = new Set(Array.from({ length: 1000 }, () => issueChallenge(key, NOW).challenge));
    assert.equal(seen.size, 1000);
  });

  it("refuse random bytes, another relay's challenge, and any changed byte", () => {
    assert.equal(checkChallenge(key, toBase64url(randomBytes(CHALLENGE_BYTES)), NOW), undefined);
    assert.equal(checkChallenge(randomBytes(32), issueChallenge(key, NOW).challenge, NOW), undefined);
    const bytes = fromBase64url(issueChallenge(key, NOW).challenge) ?? new Uint8Array();
    for (let i = 0; i < bytes.length; i++) {
      const changed = new Uint8Array(bytes);
      changed[i] = (changed[i] ?? 0) ^ 0x01;
      // Byte 3 is the low byte of the expiry: a later expiry must not be forgeable either.
      assert.equal(checkChallenge(key, toBase64url(changed), NOW), undefined, `byte ${i} changed`);
    }
  });

  it("refuse text that is not 32 bytes of base64url", () => {
    for (const text of ["", "abc", "!".repeat(43), toBase64url(randomBytes(31)), toBase64url(randomBytes(33))]) {
      assert.equal(checkChallenge(key, text, NOW), undefined, text);
    }
  });
});
