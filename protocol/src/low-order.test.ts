// All-zero and other low-order X25519 public keys. libsodium's crypto_scalarmult refuses them
// (it returns -1, which libsodium.js turns into an exception) or yields an all-zero "shared
// secret" that is no secret at all. x25519() maps both to undefined; every place that seals to a
// key turns that into an explicit Malformed refusal, and every schema that carries a key someone
// will seal to (roster devices, epoch keys, a volunteer's enrolment) refuses it up front.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { enrollRequest } from "./api/invites.js";
import { fromHex, toBase64url } from "./bytes.js";
import { CONTROL_KIND, sealControl } from "./control.js";
import { sealEnvelope } from "./envelope.js";
import { createEpochKey } from "./epoch-keys.js";
import { Malformed } from "./errors.js";
import { unwrapKey, wrapKey } from "./key-wrap.js";
import { campaignIdFromRootKey, generateDeviceKeys, generateSigningKeyPair, pseudonymFromKeys } from "./keys.js";
import { isUsableX25519PublicKey, x25519 } from "./primitives.js";
import { innerMessage, REPORT_KIND } from "./report.js";
import { createRoster } from "./roster.js";
import { initSodium, sodium } from "./sodium.js";

// Every low-order point of Curve25519 in its canonical form, non-canonical encodings of them
// (p + k) and the same with the unused top bit set: libsodium's block list and RFC 7748's points.
const LOW_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000080",
  "0100000000000000000000000000000000000000000000000000000000000080",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

const NOW = 1_722_124_800_000;

describe("low-order X25519 public keys are refused explicitly", () => {
  before(async () => {
    await initSodium();
  });

  it("libsodium refuses or zeroes them; x25519() reports undefined; isUsableX25519PublicKey is false", () => {
    const me = generateDeviceKeys().encryption;
    for (const hex of LOW_ORDER) {
      const point = fromHex(hex);
      let raw: Uint8Array | undefined;
      try {
        raw = sodium().crypto_scalarmult(me.privateKey, point);
      } catch {
        raw = undefined; // libsodium returned -1: its block list
      }
      assert.ok(raw === undefined || sodium().is_zero(raw), `${hex}: libsodium gave a non-zero secret`);
      assert.equal(x25519(me.privateKey, point), undefined, hex);
      assert.equal(isUsableX25519PublicKey(point), false, hex);
    }
    assert.equal(isUsableX25519PublicKey(me.publicKey), true);
    // Asked twice (the second answer comes from the cache of usable keys): still refused.
    for (const hex of LOW_ORDER) assert.equal(isUsableX25519PublicKey(fromHex(hex)), false, hex);
    assert.equal(isUsableX25519PublicKey(me.publicKey), true);
    assert.equal(isUsableX25519PublicKey(me.publicKey.subarray(1)), false);
  });

  it("the key wrap refuses to seal to them, with a message that says so", () => {
    for (const hex of LOW_ORDER) {
      assert.throws(
        () => wrapKey(new Uint8Array(32), fromHex(hex), new Uint8Array(0)),
        (error) => error instanceof Malformed && error.code === "MALFORMED" && /low-order/.test(error.message),
        hex,
      );
    }
  });

  it("an entry whose ephemeral key is of low order opens to nothing (no exception)", () => {
    const recipient = generateDeviceKeys().encryption;
    const entry = wrapKey(new Uint8Array(32).fill(9), recipient.publicKey, new Uint8Array(0));
    for (const hex of LOW_ORDER) {
      assert.equal(unwrapKey({ ...entry, ephemeralPublicKey: fromHex(hex) }, recipient, new Uint8Array(0)), undefined);
    }
  });

  it("envelopes and control messages refuse a low-order recipient before anything is sent", () => {
    const root = generateSigningKeyPair();
    const campaignId = campaignIdFromRootKey(root.publicKey);
    const volunteer = generateDeviceKeys();
    const coordinator = generateDeviceKeys();
    const pseudonym = pseudonymFromKeys({
      signingKey: volunteer.signing.publicKey,
      encryptionKey: volunteer.encryption.publicKey,
    });
    const message = {
      v: 1,
      kind: REPORT_KIND.status,
      campaignId,
      messageId: toBase64url(new Uint8Array(16).fill(1)),
      seq: 1,
      sentAt: NOW,
      table: "1",
      text: "ok",
    } as const;
    for (const hex of LOW_ORDER) {
      assert.throws(
        () =>
          sealEnvelope({
            campaignId,
            sender: volunteer.signing,
            recipients: [coordinator.encryption, { publicKey: fromHex(hex) }],
            message,
          }),
        Malformed,
      );
      assert.throws(
        () =>
          sealControl({
            campaignId,
            to: { pseudonym, encryptionKey: fromHex(hex) },
            signer: { deviceId: "laptop-1", signing: coordinator.signing },
            payload: {
              v: 1,
              kind: CONTROL_KIND.wipe,
              campaignId,
              to: pseudonym,
              from: "laptop-1",
              counter: NOW,
              issuedAt: NOW,
              expiresAt: NOW + 3_600_000,
              ackBy: NOW + 3_600_000,
            },
          }),
        Malformed,
      );
    }
  });

  it("roster devices, epoch keys, enrolment requests and `enrolled` reports refuse them", () => {
    const root = generateSigningKeyPair();
    const campaignId = campaignIdFromRootKey(root.publicKey);
    const device = generateDeviceKeys();
    const b64 = (bytes: Uint8Array) => toBase64url(bytes);
    for (const hex of LOW_ORDER) {
      const point = fromHex(hex);
      assert.throws(
        () =>
          createRoster({
            root,
            serial: 1,
            issuedAt: NOW,
            devices: [{ id: "laptop-1", encryptionKey: point, signingKey: device.signing.publicKey }],
          }),
        Malformed,
      );
      assert.throws(
        () =>
          createEpochKey({
            campaignId,
            deviceId: "laptop-1",
            epoch: 19_932,
            deviceSigningKey: device.signing.privateKey,
            keyPair: { publicKey: point, privateKey: new Uint8Array(32) },
          }),
        Malformed,
      );
      const enroll = {
        redeemToken: b64(new Uint8Array(32).fill(2)),
        signingKey: b64(device.signing.publicKey),
        encryptionKey: b64(point),
        signature: b64(new Uint8Array(64)),
      };
      assert.equal(enrollRequest.safeParse(enroll).success, false, hex);
      assert.equal(
        enrollRequest.safeParse({ ...enroll, encryptionKey: b64(device.encryption.publicKey) }).success,
        true,
      );
      const enrolled = {
        v: 1,
        kind: REPORT_KIND.enrolled,
        campaignId,
        messageId: b64(new Uint8Array(16)),
        seq: 0,
        sentAt: NOW,
        table: "1",
        text: "",
        invite: { nonce: b64(new Uint8Array(8)), storedHash: b64(new Uint8Array(32)), proof: b64(new Uint8Array(32)) },
        encryptionKey: b64(point),
      };
      assert.equal(innerMessage.safeParse(enrolled).success, false, hex);
      assert.equal(
        innerMessage.safeParse({ ...enrolled, encryptionKey: b64(device.encryption.publicKey) }).success,
        true,
      );
    }
  });
});
