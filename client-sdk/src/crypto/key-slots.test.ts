import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { initSodium, sodium } from "@testigo/protocol";
import {
  CAPSULE_BYTES,
  CAPSULE_PLAINTEXT_BYTES,
  CorruptKeySlots,
  clearCapsule,
  createKeySlots,
  eraseKeySlots,
  eraseSlot,
  fillSlot,
  InvalidPin,
  InvalidUnlockLimit,
  MIN_KDF_LIMITS,
  newProfile,
  openCapsule,
  parseKeySlotFile,
  sealCapsule,
  serializeKeySlotFile,
  unlockKeySlots,
} from "./key-slots.js";

// The cheapest argon2id the reader accepts: these tests check the construction, not the cost.
const limits = MIN_KDF_LIMITS;

before(async () => {
  await initSodium();
});

describe("key slots", () => {
  it("opens the real profile with the PIN, the decoy with the duress PIN, nothing with a wrong PIN", () => {
    const real = newProfile();
    const decoy = newProfile();
    const file = createKeySlots({ pin: "246810", real, duress: { pin: "135791", decoy }, limits });
    const opened = unlockKeySlots(file, "246810");
    assert.deepEqual(opened?.dataKey, real.dataKey);
    assert.deepEqual(opened?.profileId, real.profileId);
    const duress = unlockKeySlots(file, "135791");
    assert.deepEqual(duress?.dataKey, decoy.dataKey);
    assert.notEqual(duress?.slot, opened?.slot);
    assert.equal(unlockKeySlots(file, "000000"), undefined);
  });

  // Review finding L6: openSlot left the decrypted slot (data key || profile id) in memory.
  it("key slot plaintext wiped: the decrypted slot buffer is zeroed after unlocking", () => {
    const real = newProfile();
    const file = createKeySlots({ pin: "246810", real, limits });
    const s = sodium() as unknown as Record<string, unknown>;
    const name = "crypto_aead_xchacha20poly1305_ietf_decrypt";
    const original = s[name] as (...args: unknown[]) => Uint8Array;
    const returned: Uint8Array[] = [];
    s[name] = (...args: unknown[]) => {
      const out = original(...args);
      returned.push(out);
      return out;
    };
    let opened: ReturnType<typeof unlockKeySlots>;
    try {
      opened = unlockKeySlots(file, "246810");
    } finally {
      s[name] = original;
    }
    assert.deepEqual(opened?.dataKey, real.dataKey);
    assert.equal(returned.length, 1); // only the real slot decrypts; the other is random bytes
    assert.ok(returned.every((buffer) => buffer.every((byte) => byte === 0)));
    assert.notEqual(opened?.dataKey.buffer, returned[0]?.buffer);
  });

  it("looks the same with or without a duress PIN", () => {
    const withDuress = createKeySlots({
      pin: "246810",
      real: newProfile(),
      duress: { pin: "135791", decoy: newProfile() },
      limits,
    });
    const without = createKeySlots({ pin: "246810", real: newProfile(), limits });
    assert.deepEqual(Object.keys(withDuress), Object.keys(without));
    assert.equal(withDuress.slots.length, without.slots.length);
    for (let i = 0; i < 2; i++) assert.equal(withDuress.slots[i]?.length, without.slots[i]?.length);
    assert.equal(serializeKeySlotFile(withDuress).length, serializeKeySlotFile(without).length);
  });

  it("erasing a slot makes its profile unrecoverable and keeps the other", () => {
    const real = newProfile();
    const decoy = newProfile();
    const file = createKeySlots({ pin: "246810", real, duress: { pin: "135791", decoy }, limits });
    const realSlot = unlockKeySlots(file, "246810")?.slot ?? -1;
    const erased = eraseSlot(file, realSlot);
    assert.equal(unlockKeySlots(erased, "246810"), undefined);
    assert.deepEqual(unlockKeySlots(erased, "135791")?.dataKey, decoy.dataKey);
  });

  it("adds a duress PIN later into the spare slot", () => {
    const real = newProfile();
    const file = createKeySlots({ pin: "246810", real, limits });
    const realSlot = unlockKeySlots(file, "246810")?.slot ?? -1;
    const decoy = newProfile();
    const updated = fillSlot(file, 1 - realSlot, "999999", decoy);
    assert.deepEqual(unlockKeySlots(updated, "246810")?.dataKey, real.dataKey);
    assert.deepEqual(unlockKeySlots(updated, "999999")?.dataKey, decoy.dataKey);
  });

  it("refuses short PINs and a duress PIN equal to the PIN", () => {
    assert.throws(() => createKeySlots({ pin: "1234", real: newProfile(), limits }), InvalidPin);
    assert.throws(
      () =>
        createKeySlots({ pin: "246810", real: newProfile(), duress: { pin: "246810", decoy: newProfile() }, limits }),
      InvalidPin,
    );
  });

  it("round-trips through its serialized form and rejects damaged files", () => {
    const file = createKeySlots({ pin: "246810", real: newProfile(), limits });
    const parsed = parseKeySlotFile(serializeKeySlotFile(file));
    assert.deepEqual(parsed, file);
    const bad = [
      new TextEncoder().encode("not json"),
      serializeKeySlotFile({ ...file, slots: [file.slots[0] ?? ""] }),
      serializeKeySlotFile({ ...file, kdf: { ...file.kdf, memLimit: 1 } }),
      serializeKeySlotFile({ ...file, kdf: { ...file.kdf, salt: "AAAA" } }),
      new TextEncoder().encode(JSON.stringify({ ...file, extra: 1 })),
    ];
    for (const bytes of bad) assert.throws(() => parseKeySlotFile(bytes), CorruptKeySlots);
  });

  it("the capsule: sealed and random regions have one length; only the right secret key opens it", () => {
    const s = sodium();
    const file = createKeySlots({ pin: "246810", real: newProfile(), limits });
    const pair = s.crypto_box_keypair();
    const message = new TextEncoder().encode("capsule payload");
    const sealed = sealCapsule(file, pair.publicKey, message);
    assert.equal(sealed.capsule.length, file.capsule.length);
    const opened = openCapsule(sealed, pair.privateKey);
    assert.equal(opened?.length, CAPSULE_PLAINTEXT_BYTES);
    assert.deepEqual(opened?.subarray(0, message.length), message);
    assert.ok(opened?.subarray(message.length).every((byte) => byte === 0));
    assert.equal(openCapsule(sealed, s.crypto_box_keypair().privateKey), undefined);
    assert.equal(openCapsule(file, pair.privateKey), undefined);
    assert.equal(openCapsule(clearCapsule(sealed), pair.privateKey), undefined);
    assert.equal(parseKeySlotFile(serializeKeySlotFile(sealed)).capsule, sealed.capsule);
    assert.throws(() => sealCapsule(file, pair.publicKey, new Uint8Array(CAPSULE_PLAINTEXT_BYTES + 1)), RangeError);
    assert.equal(CAPSULE_BYTES, CAPSULE_PLAINTEXT_BYTES + 48);
  });

  it("eraseKeySlots: no PIN opens anything, the capsule is random, the counter restarts, the limit stays", () => {
    const s = sodium();
    const pair = s.crypto_box_keypair();
    const file = sealCapsule(
      {
        ...createKeySlots({
          pin: "246810",
          real: newProfile(),
          duress: { pin: "135791", decoy: newProfile() },
          limits,
          maxFailedUnlocks: 4,
        }),
        failedUnlocks: 3,
      },
      pair.publicKey,
      new Uint8Array([1]),
    );
    const erased = eraseKeySlots(file);
    assert.equal(unlockKeySlots(erased, "246810"), undefined);
    assert.equal(unlockKeySlots(erased, "135791"), undefined);
    assert.equal(openCapsule(erased, pair.privateKey), undefined);
    assert.deepEqual([erased.failedUnlocks, erased.maxFailedUnlocks], [0, 4]);
    assert.equal(serializeKeySlotFile(erased).length, serializeKeySlotFile(file).length);
  });

  it("the wrong-PIN limit is stored in clear and bounded", () => {
    assert.equal(createKeySlots({ pin: "246810", real: newProfile(), limits }).maxFailedUnlocks, 10);
    for (const bad of [0, -1, 1.5, 1001]) {
      assert.throws(
        () => createKeySlots({ pin: "246810", real: newProfile(), limits, maxFailedUnlocks: bad }),
        InvalidUnlockLimit,
      );
    }
    const file = createKeySlots({ pin: "246810", real: newProfile(), limits });
    const bytes = new TextEncoder().encode(JSON.stringify({ ...file, maxFailedUnlocks: 0 }));
    assert.throws(() => parseKeySlotFile(bytes), CorruptKeySlots);
    const short = new TextEncoder().encode(JSON.stringify({ ...file, capsule: "AAAA" }));
    assert.throws(() => parseKeySlotFile(short), CorruptKeySlots);
  });
});
