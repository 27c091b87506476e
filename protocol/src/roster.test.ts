import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { fromBase64url, fromHex, fromUtf8, toBase64url, toHex, utf8 } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { DecryptionFailed, Malformed } from "./errors.js";
import { campaignIdFromRootKey, generateDeviceKeys, generateSigningKeyPair, signWithDomain } from "./keys.js";
import {
  acceptRoster,
  campaignIdFromFingerprint,
  createRoster,
  findRosterDeviceBySigningKey,
  formatRosterFingerprint,
  isNewerRoster,
  type Roster,
  type RosterDeviceInput,
  RosterRollback,
  rosterDeviceKeys,
  rosterFingerprint,
  verifyRoster,
} from "./roster.js";
import type { SignedDocument } from "./signed-document.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

const VECTORS = new URL("../test-vectors/roster.json", import.meta.url);

function seedOf(byte: number): Uint8Array {
  return new Uint8Array(32).map((_, i) => (byte + i) & 0xff);
}

interface RosterVector {
  name: string;
  rootSeed: string;
  devices: { id: string; encryptionSeed: string; signingSeed: string; label?: string }[];
  serial: number;
  issuedAt: number;
  expected: {
    rootPublicKey: string;
    campaignId: string;
    rosterFingerprint: string;
    rosterFingerprintText: string;
    payloadJson: string;
    signed: SignedDocument;
  };
}

function vectorInputs(): Omit<RosterVector, "expected">[] {
  return [
    {
      name: "one device, no label",
      rootSeed: toHex(seedOf(0x01)),
      devices: [{ id: "laptop-1", encryptionSeed: toHex(seedOf(0x11)), signingSeed: toHex(seedOf(0x21)) }],
      serial: 1,
      issuedAt: 1_722_000_000_000,
    },
    {
      name: "three devices with labels, later serial",
      rootSeed: toHex(seedOf(0x01)),
      devices: [
        { id: "laptop-1", encryptionSeed: toHex(seedOf(0x11)), signingSeed: toHex(seedOf(0x21)), label: "Caracas" },
        { id: "laptop-2", encryptionSeed: toHex(seedOf(0x12)), signingSeed: toHex(seedOf(0x22)), label: "Bogotá ✓" },
        { id: "phone_3", encryptionSeed: toHex(seedOf(0x13)), signingSeed: toHex(seedOf(0x23)) },
      ],
      serial: 7,
      issuedAt: 1_722_186_400_123,
    },
  ];
}

function deviceInputs(v: Omit<RosterVector, "expected">): RosterDeviceInput[] {
  return v.devices.map((d) => {
    const keys = generateDeviceKeys({ encryption: fromHex(d.encryptionSeed), signing: fromHex(d.signingSeed) });
    return {
      id: d.id,
      encryptionKey: keys.encryption.publicKey,
      signingKey: keys.signing.publicKey,
      ...(d.label === undefined ? {} : { label: d.label }),
    };
  });
}

function makeVector(v: Omit<RosterVector, "expected">): RosterVector {
  const root = generateSigningKeyPair(fromHex(v.rootSeed));
  const signed = createRoster({ root, serial: v.serial, issuedAt: v.issuedAt, devices: deviceInputs(v) });
  const fp = rosterFingerprint(root.publicKey);
  return {
    ...v,
    expected: {
      rootPublicKey: toHex(root.publicKey),
      campaignId: campaignIdFromRootKey(root.publicKey),
      rosterFingerprint: toHex(fp),
      rosterFingerprintText: formatRosterFingerprint(fp),
      payloadJson: fromUtf8(fromBase64url(signed.payload) as Uint8Array),
      signed,
    },
  };
}

// The X25519 points of low order (and non-canonical encodings of them, with and without the
// unused top bit): a shared secret with any of them is all zeros (libsodium's blocklist).
const LOW_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000080",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

describe("roster golden vectors", () => {
  it("match the checked-in file in both directions (UPDATE_VECTORS=1 regenerates it)", () => {
    if (process.env.UPDATE_VECTORS === "1" || !existsSync(VECTORS)) {
      assert.equal(process.env.UPDATE_VECTORS, "1", "test-vectors/roster.json is missing: run with UPDATE_VECTORS=1");
      mkdirSync(new URL(".", VECTORS), { recursive: true });
      const file = { construction: "testigo roster v1", vectors: vectorInputs().map(makeVector) };
      writeFileSync(VECTORS, `${JSON.stringify(file, null, 2)}\n`);
    }
    const file = JSON.parse(readFileSync(VECTORS, "utf8")) as { vectors: RosterVector[] };
    assert.equal(file.vectors.length, 2);
    for (const v of file.vectors) {
      // Inputs → bytes.
      assert.deepEqual(makeVector(v), v, v.name);
      // Bytes → value: the checked-in document verifies against the checked-in fingerprint.
      const roster = verifyRoster(v.expected.signed, fromHex(v.expected.rosterFingerprint));
      assert.equal(JSON.stringify(roster), v.expected.payloadJson, v.name);
      assert.equal(roster.campaignId, v.expected.campaignId);
      assert.equal(toHex(fromBase64url(roster.rootKey) as Uint8Array), v.expected.rootPublicKey);
      assert.match(v.expected.rosterFingerprintText, /^(?:[0-9A-HJKMNP-TV-Z]{4} ){6}[0-9A-HJKMNP-TV-Z]{2}$/);
    }
  });
});

const root = () => generateSigningKeyPair(seedOf(0x01));

function devices(count: number): RosterDeviceInput[] {
  return Array.from({ length: count }, (_, i) => {
    const keys = generateDeviceKeys();
    return { id: `dev-${i}`, encryptionKey: keys.encryption.publicKey, signingKey: keys.signing.publicKey };
  });
}

function resign(payload: unknown, privateKey: Uint8Array): SignedDocument {
  const bytes = utf8(JSON.stringify(payload));
  return {
    payload: toBase64url(bytes),
    signature: toBase64url(signWithDomain(DOMAIN.rosterSignature, bytes, privateKey)),
  };
}

describe("roster", () => {
  it("round-trips any valid roster", () => {
    const r = root();
    const fp = rosterFingerprint(r.publicKey);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.option(fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/[\p{Cc}\p{Cf}]/u.test(s))),
        (count, serial, issuedAt, label) => {
          const input = devices(count).map((d) => (label === null ? d : { ...d, label }));
          const value = verifyRoster(createRoster({ root: r, serial, issuedAt, devices: input }), fp);
          assert.equal(value.serial, serial);
          assert.equal(value.devices.length, count);
          for (const [i, d] of value.devices.entries()) {
            assert.deepEqual(rosterDeviceKeys(d), {
              encryptionKey: input[i]?.encryptionKey,
              signingKey: input[i]?.signingKey,
            });
            assert.equal(findRosterDeviceBySigningKey(value, input[i]?.signingKey as Uint8Array)?.id, d.id);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it("rejects any single bit flip in the payload or the signature", () => {
    const r = root();
    const fp = rosterFingerprint(r.publicKey);
    const signed = createRoster({ root: r, serial: 3, issuedAt: 1, devices: devices(2) });
    const payload = fromBase64url(signed.payload) as Uint8Array;
    const sig = fromBase64url(signed.signature) as Uint8Array;
    fc.assert(
      fc.property(fc.boolean(), fc.nat(), (inPayload, n) => {
        const target = inPayload ? payload.slice() : sig.slice();
        const bit = n % (target.length * 8);
        target[bit >> 3] = (target[bit >> 3] as number) ^ (1 << (bit & 7));
        const forged = inPayload
          ? { payload: toBase64url(target), signature: signed.signature }
          : { payload: signed.payload, signature: toBase64url(target) };
        assert.throws(() => verifyRoster(forged, fp), DecryptionFailed);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects a roster signed by any key other than the invite's root", () => {
    const r = root();
    const fp = rosterFingerprint(r.publicKey);
    const genuine = createRoster({ root: r, serial: 1, issuedAt: 1, devices: devices(1) });
    const payload = JSON.parse(fromUtf8(fromBase64url(genuine.payload) as Uint8Array)) as Roster;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const attacker = generateSigningKeyPair(seed);
        // The genuine payload (naming the genuine root) signed by the attacker.
        assert.throws(() => verifyRoster(resign(payload, attacker.privateKey), fp), DecryptionFailed);
        // A complete roster of the attacker's own campaign: valid, but not the invite's root.
        const own = createRoster({ root: attacker, serial: 9, issuedAt: 1, devices: devices(1) });
        assert.throws(() => verifyRoster(own, fp), DecryptionFailed);
        // The attacker's root key claimed in the payload with the genuine campaign id.
        const claimed = { ...payload, rootKey: toBase64url(attacker.publicKey) };
        assert.throws(() => verifyRoster(resign(claimed, attacker.privateKey), fp), DecryptionFailed);
      }),
      { numRuns: 20 },
    );
  });

  it("rejects, even when signed by the root, a campaign id not derived from it, unknown keys and bad device sets", () => {
    const r = root();
    const fp = rosterFingerprint(r.publicKey);
    const genuine = createRoster({ root: r, serial: 1, issuedAt: 1, devices: devices(2) });
    const payload = JSON.parse(fromUtf8(fromBase64url(genuine.payload) as Uint8Array)) as Roster;
    const [a, b] = payload.devices as [Roster["devices"][number], Roster["devices"][number]];
    const bad: unknown[] = [
      { ...payload, campaignId: campaignIdFromRootKey(generateSigningKeyPair().publicKey) },
      { ...payload, extra: 1 },
      { ...payload, v: 2 },
      { ...payload, serial: 0 },
      { ...payload, serial: 1.5 },
      { ...payload, devices: [] },
      { ...payload, devices: [a, { ...b, id: a.id }] },
      { ...payload, devices: [a, { ...b, signingKey: a.signingKey }] },
      { ...payload, devices: [a, { ...b, encryptionKey: a.encryptionKey }] },
      { ...payload, devices: [a, { ...b, signingKey: payload.rootKey }] },
      { ...payload, devices: [{ ...a, label: "x\u202ey" }] },
      { ...payload, devices: [{ ...a, extra: true }] },
      { ...payload, devices: Array.from({ length: 65 }, (_, i) => ({ ...a, id: `d${i}` })) },
    ];
    assert.deepEqual(verifyRoster(resign(payload, r.privateKey), fp), payload);
    for (const value of bad) assert.throws(() => verifyRoster(resign(value, r.privateKey), fp), DecryptionFailed);
    for (const value of [null, 1, "x", {}, { payload: genuine.payload }]) {
      assert.throws(() => verifyRoster(value, fp), DecryptionFailed);
    }
  });

  // Review finding L8: a low-order device encryption key would make every seal to it fail.
  it("low-order device encryption keys are refused", () => {
    const r = root();
    const fp = rosterFingerprint(r.publicKey);
    const genuine = createRoster({ root: r, serial: 1, issuedAt: 1, devices: devices(2) });
    const payload = JSON.parse(fromUtf8(fromBase64url(genuine.payload) as Uint8Array)) as Roster;
    const [a, b] = payload.devices as [Roster["devices"][number], Roster["devices"][number]];
    for (const hex of LOW_ORDER_POINTS) {
      const value = { ...payload, devices: [a, { ...b, encryptionKey: toBase64url(fromHex(hex)) }] };
      assert.throws(() => verifyRoster(resign(value, r.privateKey), fp), DecryptionFailed, hex);
      const input = devices(2).map((d, i) => (i === 1 ? { ...d, encryptionKey: fromHex(hex) } : d));
      assert.throws(() => createRoster({ root: r, serial: 1, issuedAt: 1, devices: input }), Error, hex);
    }
  });

  // Review finding L3: a fingerprint of the wrong length threw RangeError, not a ProtocolError.
  it("formatRosterFingerprint refuses a wrong length with Malformed", () => {
    for (const length of [0, 15, 17, 32]) {
      assert.throws(() => formatRosterFingerprint(new Uint8Array(length)), Malformed);
      assert.throws(() => campaignIdFromFingerprint(new Uint8Array(length)), Malformed);
    }
  });

  it("keeps the highest serial and refuses rollbacks and conflicting rosters", () => {
    const r = root();
    const fp = rosterFingerprint(r.publicKey);
    const set = devices(2);
    const v1 = verifyRoster(createRoster({ root: r, serial: 1, issuedAt: 1, devices: set.slice(0, 1) }), fp);
    const v2 = verifyRoster(createRoster({ root: r, serial: 2, issuedAt: 2, devices: set }), fp);
    const v2b = verifyRoster(createRoster({ root: r, serial: 2, issuedAt: 3, devices: set }), fp);
    assert.equal(isNewerRoster(v2, v1), true);
    assert.equal(isNewerRoster(v1, v2), false);
    assert.equal(isNewerRoster(v2, v2), false);
    assert.equal(acceptRoster(undefined, v1), v1);
    assert.equal(acceptRoster(v1, v2), v2);
    assert.equal(acceptRoster(v2, structuredClone(v2)), v2);
    assert.throws(() => acceptRoster(v2, v1), RosterRollback);
    assert.throws(() => acceptRoster(v2, v2b), RosterRollback);
    const otherRoot = generateSigningKeyPair();
    const other = verifyRoster(
      createRoster({ root: otherRoot, serial: 5, issuedAt: 1, devices: set }),
      rosterFingerprint(otherRoot.publicKey),
    );
    assert.equal(isNewerRoster(other, v1), false);
    assert.throws(() => acceptRoster(v1, other), DecryptionFailed);
  });

  it("formats the fingerprint as 26 Crockford characters in groups of four", () => {
    const fp = rosterFingerprint(root().publicKey);
    assert.equal(fp.length, 16);
    const text = formatRosterFingerprint(fp);
    assert.equal(text.replaceAll(" ", "").length, 26);
    assert.match(text, /^(?:[0-9A-HJKMNP-TV-Z]{4} ){6}[0-9A-HJKMNP-TV-Z]{2}$/);
  });
});
