import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { fromBase64url, fromHex, fromUtf8, toBase64url, toHex, utf8 } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import {
  createEpochKey,
  DEFAULT_EPOCH_PERIOD_MS,
  DEFAULT_RELAY_RETENTION_MS,
  EPOCH_GRACE_MS,
  type EpochKey,
  epochAt,
  epochPrivateKeyDeletionTime,
  epochsToPublish,
  epochWindow,
  isEpochKeyCurrent,
  NoCurrentEpochKey,
  openEpochKey,
  selectEpochKeys,
} from "./epoch-keys.js";
import { DecryptionFailed } from "./errors.js";
import {
  campaignIdFromRootKey,
  type DeviceKeys,
  generateDeviceKeys,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  signWithDomain,
} from "./keys.js";
import { createRoster, type Roster, rosterFingerprint, verifyRoster } from "./roster.js";
import type { SignedDocument } from "./signed-document.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

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

const VECTORS = new URL("../test-vectors/epoch-keys.json", import.meta.url);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 28 July 2024 00:00 UTC, election day: epoch 19932 of 24 h. */
const ELECTION_DAY = 1_722_124_800_000;

function seedOf(byte: number): Uint8Array {
  return new Uint8Array(32).map((_, i) => (byte + i) & 0xff);
}

interface EpochVector {
  name: string;
  rootSeed: string;
  deviceId: string;
  deviceSigningSeed: string;
  epochKeySeed: string;
  epoch: number;
  periodMs: number;
  expected: {
    campaignId: string;
    deviceSigningKey: string;
    epochPublicKey: string;
    notBefore: number;
    notAfter: number;
    payloadJson: string;
    signed: SignedDocument;
    privateKeyDeletionTime: number;
  };
}

function makeVector(v: Omit<EpochVector, "expected">): EpochVector {
  const campaignId = campaignIdFromRootKey(generateSigningKeyPair(fromHex(v.rootSeed)).publicKey);
  const device = generateSigningKeyPair(fromHex(v.deviceSigningSeed));
  const created = createEpochKey({
    campaignId,
    deviceId: v.deviceId,
    epoch: v.epoch,
    periodMs: v.periodMs,
    deviceSigningKey: device.privateKey,
    keyPair: generateEncryptionKeyPair(fromHex(v.epochKeySeed)),
  });
  return {
    ...v,
    expected: {
      campaignId,
      deviceSigningKey: toHex(device.publicKey),
      epochPublicKey: toHex(created.keyPair.publicKey),
      notBefore: created.value.notBefore,
      notAfter: created.value.notAfter,
      payloadJson: fromUtf8(fromBase64url(created.signed.payload) as Uint8Array),
      signed: created.signed,
      privateKeyDeletionTime: epochPrivateKeyDeletionTime(created.value),
    },
  };
}

function vectorInputs(): Omit<EpochVector, "expected">[] {
  const base = { rootSeed: toHex(seedOf(0x01)), deviceId: "laptop-1", deviceSigningSeed: toHex(seedOf(0x21)) };
  return [
    { name: "election day, 24 h period", ...base, epochKeySeed: toHex(seedOf(0x61)), epoch: 19932, periodMs: DAY },
    { name: "the next day", ...base, epochKeySeed: toHex(seedOf(0x62)), epoch: 19933, periodMs: DAY },
    { name: "6 h period", ...base, epochKeySeed: toHex(seedOf(0x63)), epoch: 4 * 19932 + 3, periodMs: 6 * HOUR },
  ];
}

describe("epoch key golden vectors", () => {
  it("match the checked-in file in both directions (UPDATE_VECTORS=1 regenerates it)", () => {
    if (process.env.UPDATE_VECTORS === "1" || !existsSync(VECTORS)) {
      assert.equal(
        process.env.UPDATE_VECTORS,
        "1",
        "test-vectors/epoch-keys.json is missing: run with UPDATE_VECTORS=1",
      );
      mkdirSync(new URL(".", VECTORS), { recursive: true });
      const file = { construction: "testigo epoch key v1", vectors: vectorInputs().map(makeVector) };
      writeFileSync(VECTORS, `${JSON.stringify(file, null, 2)}\n`);
    }
    const file = JSON.parse(readFileSync(VECTORS, "utf8")) as { vectors: EpochVector[] };
    assert.equal(file.vectors.length, 3);
    for (const v of file.vectors) {
      assert.deepEqual(makeVector(v), v, v.name);
      const value = openEpochKey(v.expected.signed, fromHex(v.expected.deviceSigningKey));
      assert.equal(JSON.stringify(value), v.expected.payloadJson);
      assert.equal(toHex(fromBase64url(value.publicKey) as Uint8Array), v.expected.epochPublicKey);
      assert.equal(value.notAfter - value.notBefore, v.periodMs);
      assert.equal(v.expected.privateKeyDeletionTime, value.notAfter + 14 * DAY + HOUR);
    }
  });
});

interface Campaign {
  root: ReturnType<typeof generateSigningKeyPair>;
  devices: { id: string; keys: DeviceKeys }[];
  roster: Roster;
}

function campaign(count: number): Campaign {
  const root = generateSigningKeyPair();
  const devices = Array.from({ length: count }, (_, i) => ({ id: `dev-${i}`, keys: generateDeviceKeys() }));
  const signed = createRoster({
    root,
    serial: 1,
    issuedAt: ELECTION_DAY,
    devices: devices.map((d) => ({
      id: d.id,
      encryptionKey: d.keys.encryption.publicKey,
      signingKey: d.keys.signing.publicKey,
    })),
  });
  return { root, devices, roster: verifyRoster(signed, rosterFingerprint(root.publicKey)) };
}

/** What a relay serves when every device published the epochs `epochs`. */
function published(c: Campaign, epochs: readonly number[]): Record<string, SignedDocument[]> {
  return Object.fromEntries(
    c.devices.map((d) => [
      d.id,
      epochs.map(
        (epoch) =>
          createEpochKey({
            campaignId: c.roster.campaignId,
            deviceId: d.id,
            epoch,
            deviceSigningKey: d.keys.signing.privateKey,
          }).signed,
      ),
    ]),
  );
}

function resign(value: unknown, privateKey: Uint8Array): SignedDocument {
  const bytes = utf8(JSON.stringify(value));
  return {
    payload: toBase64url(bytes),
    signature: toBase64url(signWithDomain(DOMAIN.epochKeySignature, bytes, privateKey)),
  };
}

describe("epoch schedule", () => {
  it("numbers epochs by period and publishes the current and the next", () => {
    assert.equal(epochAt(ELECTION_DAY), 19932);
    assert.equal(epochAt(ELECTION_DAY - 1), 19931);
    assert.deepEqual(epochsToPublish(ELECTION_DAY + 5 * HOUR), [19932, 19933]);
    assert.deepEqual(epochWindow(19932), { notBefore: ELECTION_DAY, notAfter: ELECTION_DAY + DAY });
    assert.equal(epochAt(ELECTION_DAY + 7 * HOUR, 6 * HOUR), 4 * 19932 + 1);
    assert.equal(DEFAULT_EPOCH_PERIOD_MS, DAY);
    assert.equal(EPOCH_GRACE_MS, HOUR);
  });

  it("erases a private key at notAfter + relay retention + grace", () => {
    const window = epochWindow(19932);
    assert.equal(epochPrivateKeyDeletionTime(window), ELECTION_DAY + DAY + DEFAULT_RELAY_RETENTION_MS + HOUR);
    assert.equal(epochPrivateKeyDeletionTime(window, 2 * DAY), ELECTION_DAY + 3 * DAY + HOUR);
  });
});

describe("epoch keys", () => {
  it("round-trip for any epoch and period", () => {
    const device = generateSigningKeyPair();
    const campaignId = campaignIdFromRootKey(generateSigningKeyPair().publicKey);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40_000 }),
        fc.integer({ min: 1, max: 168 }).map((h) => h * HOUR),
        (epoch, periodMs) => {
          const created = createEpochKey({
            campaignId,
            deviceId: "d",
            epoch,
            periodMs,
            deviceSigningKey: device.privateKey,
          });
          const value = openEpochKey(created.signed, device.publicKey);
          assert.deepEqual(value, created.value);
          assert.deepEqual(fromBase64url(value.publicKey), created.keyPair.publicKey);
          assert.equal(value.notBefore, epoch * periodMs);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("select every roster device's current key, with ±1 h grace at the edges", () => {
    const c = campaign(3);
    const docs = published(c, [19932, 19933]);
    for (const [now, epoch] of [
      [ELECTION_DAY, 19932],
      [ELECTION_DAY + 12 * HOUR, 19932],
      [ELECTION_DAY + DAY - 1, 19932],
      [ELECTION_DAY + DAY, 19933],
      [ELECTION_DAY - HOUR, 19932], // phone clock up to 1 h behind, before the first published epoch
      [ELECTION_DAY + 2 * DAY + HOUR - 1, 19933], // up to 1 h ahead of the last one
    ] as const) {
      const selected = selectEpochKeys(docs, c.roster, now);
      assert.deepEqual(
        selected.map((s) => s.deviceId),
        c.devices.map((d) => d.id),
      );
      for (const s of selected) {
        assert.equal(s.epoch, epoch, `now=${now}`);
        assert.equal(s.publicKey.length, 32);
      }
    }
  });

  it("name the roster devices without a current key", () => {
    const c = campaign(3);
    const docs = published(c, [19932]);
    docs["dev-1"] = [];
    delete docs["dev-2"];
    assert.throws(
      () => selectEpochKeys(docs, c.roster, ELECTION_DAY + HOUR),
      (error: unknown) =>
        error instanceof NoCurrentEpochKey &&
        error.code === "NO_CURRENT_EPOCH_KEY" &&
        error.deviceIds.join() === "dev-1,dev-2",
    );
    for (const now of [ELECTION_DAY - HOUR - 1, ELECTION_DAY + DAY + HOUR]) {
      assert.throws(() => selectEpochKeys(published(c, [19932]), c.roster, now), NoCurrentEpochKey);
    }
  });

  it("reject any bit flip in any served document", () => {
    const c = campaign(2);
    const docs = published(c, [19932, 19933]);
    fc.assert(
      fc.property(fc.nat(1), fc.nat(1), fc.boolean(), fc.nat(), (device, index, inPayload, n) => {
        const id = `dev-${device}`;
        const doc = docs[id]?.[index] as SignedDocument;
        const target = fromBase64url(inPayload ? doc.payload : doc.signature) as Uint8Array;
        const bit = n % (target.length * 8);
        target[bit >> 3] = (target[bit >> 3] as number) ^ (1 << (bit & 7));
        const forged = inPayload
          ? { ...doc, payload: toBase64url(target) }
          : { ...doc, signature: toBase64url(target) };
        const served = { ...docs, [id]: (docs[id] ?? []).map((d, i) => (i === index ? forged : d)) };
        assert.throws(() => selectEpochKeys(served, c.roster, ELECTION_DAY), DecryptionFailed);
      }),
      { numRuns: 200 },
    );
  });

  it("reject a key signed by anyone but that roster device", () => {
    const c = campaign(2);
    const docs = published(c, [19932]);
    const genuine = openEpochKey(docs["dev-0"]?.[0], c.devices[0]?.keys.signing.publicKey as Uint8Array);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const attacker = generateSigningKeyPair(seed);
        const forged = createEpochKey({
          campaignId: c.roster.campaignId,
          deviceId: "dev-0",
          epoch: 19932,
          deviceSigningKey: attacker.privateKey,
        }).signed;
        assert.throws(() => selectEpochKeys({ ...docs, "dev-0": [forged] }, c.roster, ELECTION_DAY), DecryptionFailed);
        // Even next to the genuine key, a forged document means the relay is lying.
        assert.throws(
          () => selectEpochKeys({ ...docs, "dev-0": [...(docs["dev-0"] ?? []), forged] }, c.roster, ELECTION_DAY),
          DecryptionFailed,
        );
      }),
      { numRuns: 20 },
    );
    // The root key and the other roster device are not dev-0's key either.
    for (const key of [c.root.privateKey, c.devices[1]?.keys.signing.privateKey as Uint8Array]) {
      assert.throws(
        () => selectEpochKeys({ ...docs, "dev-0": [resign(genuine, key)] }, c.roster, ELECTION_DAY),
        DecryptionFailed,
      );
    }
    // A device the roster does not list.
    const stranger = generateSigningKeyPair();
    const strangerDoc = createEpochKey({
      campaignId: c.roster.campaignId,
      deviceId: "dev-9",
      epoch: 19932,
      deviceSigningKey: stranger.privateKey,
    }).signed;
    assert.throws(() => selectEpochKeys({ ...docs, "dev-9": [strangerDoc] }, c.roster, ELECTION_DAY), DecryptionFailed);
  });

  it("reject, even when signed by the device, another campaign, another device id or a bad window", () => {
    const c = campaign(2);
    const docs = published(c, [19932]);
    const key = c.devices[0]?.keys.signing.privateKey as Uint8Array;
    const genuine = openEpochKey(docs["dev-0"]?.[0], c.devices[0]?.keys.signing.publicKey as Uint8Array);
    const bad: EpochKey[] = [
      { ...genuine, campaignId: campaignIdFromRootKey(generateSigningKeyPair().publicKey) },
      { ...genuine, deviceId: "dev-1" },
      { ...genuine, notBefore: genuine.notBefore + 1 },
      { ...genuine, epoch: genuine.epoch + 1 },
      { ...genuine, notAfter: genuine.notBefore + 30 * 60 * 1000 },
      { ...genuine, notAfter: genuine.notBefore + 8 * DAY },
    ];
    assert.equal(selectEpochKeys({ ...docs, "dev-0": [resign(genuine, key)] }, c.roster, ELECTION_DAY).length, 2);
    for (const value of bad) {
      assert.throws(
        () => selectEpochKeys({ ...docs, "dev-0": [resign(value, key)] }, c.roster, ELECTION_DAY),
        DecryptionFailed,
      );
    }
    assert.throws(
      () => selectEpochKeys({ ...docs, "dev-0": [resign({ ...genuine, extra: 1 }, key)] }, c.roster, ELECTION_DAY),
      DecryptionFailed,
    );
    assert.throws(() => selectEpochKeys({ ...docs, "dev-0": [null] }, c.roster, ELECTION_DAY), DecryptionFailed);
  });

  // Review finding L8: a low-order epoch public key was accepted, then every seal to it failed
  // with Malformed; one device's bad key stopped every volunteer's reports.
  it("low-order epoch keys are refused when the document is opened", () => {
    const c = campaign(2);
    const docs = published(c, [19932]);
    const device = c.devices[0] as { keys: DeviceKeys };
    const genuine = openEpochKey(docs["dev-0"]?.[0], device.keys.signing.publicKey);
    for (const hex of LOW_ORDER_POINTS) {
      const doc = resign({ ...genuine, publicKey: toBase64url(fromHex(hex)) }, device.keys.signing.privateKey);
      assert.throws(() => openEpochKey(doc, device.keys.signing.publicKey), DecryptionFailed, hex);
      assert.throws(() => selectEpochKeys({ ...docs, "dev-0": [doc] }, c.roster, ELECTION_DAY), DecryptionFailed, hex);
    }
    assert.throws(
      () =>
        createEpochKey({
          campaignId: c.roster.campaignId,
          deviceId: "dev-0",
          epoch: 19932,
          deviceSigningKey: device.keys.signing.privateKey,
          keyPair: { publicKey: new Uint8Array(32), privateKey: new Uint8Array(32) },
        }),
      Error,
    );
  });

  // Review finding L3: a served map whose entry is not an array threw TypeError ("docs is not
  // iterable"), not a ProtocolError.
  it("a hostile epoch-key map is DecryptionFailed, never a TypeError", () => {
    const c = campaign(1);
    for (const bad of [{ "dev-0": 5 }, { "dev-0": "x" }, { "dev-0": {} }, { "dev-0": [1] }, null, 5, [], "x"]) {
      assert.throws(
        () => selectEpochKeys(bad as unknown as Record<string, unknown[]>, c.roster, ELECTION_DAY),
        DecryptionFailed,
        JSON.stringify(bad),
      );
    }
  });

  it("is current exactly within [notBefore - grace, notAfter + grace)", () => {
    const w = epochWindow(19932);
    const key = { notBefore: w.notBefore, notAfter: w.notAfter } as EpochKey;
    assert.equal(isEpochKeyCurrent(key, w.notBefore - HOUR - 1), false);
    assert.equal(isEpochKeyCurrent(key, w.notBefore - HOUR), true);
    assert.equal(isEpochKeyCurrent(key, w.notAfter + HOUR - 1), true);
    assert.equal(isEpochKeyCurrent(key, w.notAfter + HOUR), false);
  });
});
