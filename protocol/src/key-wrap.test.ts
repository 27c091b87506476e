import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { fromHex, toHex } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { Malformed } from "./errors.js";
import { decodeWrappedKey, encodeWrappedKey, keyIdOf, unwrapKey, WRAP_ENTRY_BYTES, wrapKey } from "./key-wrap.js";
import { generateEncryptionKeyPair, hashWithDomain } from "./keys.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

const VECTORS = new URL("../test-vectors/key-wrap.json", import.meta.url);

interface KeyWrapVector {
  name: string;
  recipientSeed: string;
  contentKey: string;
  associatedData: string;
  ephemeralSeed: string;
  expected: { recipientPublicKey: string; keyId: string; ephemeralPublicKey: string; wrapped: string; entry: string };
}

function seedOf(byte: number): Uint8Array {
  return new Uint8Array(32).map((_, i) => (byte + i) & 0xff);
}

function makeVectors(): KeyWrapVector[] {
  const cases = [
    { name: "empty associated data", recipient: 1, key: 2, ad: "", eph: 3 },
    { name: "35-byte header as associated data", recipient: 0x10, key: 0x20, ad: "01".repeat(35), eph: 0x30 },
    { name: "long associated data", recipient: 0xa0, key: 0xb0, ad: "ab".repeat(35 + 88 * 3), eph: 0xc0 },
  ];
  return cases.map((c) => {
    const recipient = generateEncryptionKeyPair(seedOf(c.recipient));
    const contentKey = seedOf(c.key);
    const entry = wrapKey(contentKey, recipient.publicKey, fromHex(c.ad), seedOf(c.eph));
    return {
      name: c.name,
      recipientSeed: toHex(seedOf(c.recipient)),
      contentKey: toHex(contentKey),
      associatedData: c.ad,
      ephemeralSeed: toHex(seedOf(c.eph)),
      expected: {
        recipientPublicKey: toHex(recipient.publicKey),
        keyId: toHex(entry.keyId),
        ephemeralPublicKey: toHex(entry.ephemeralPublicKey),
        wrapped: toHex(entry.wrapped),
        entry: toHex(encodeWrappedKey(entry)),
      },
    };
  });
}

describe("key wrap golden vectors", () => {
  it("match the checked-in file (UPDATE_VECTORS=1 regenerates it)", () => {
    if (process.env.UPDATE_VECTORS === "1" || !existsSync(VECTORS)) {
      assert.equal(process.env.UPDATE_VECTORS, "1", "test-vectors/key-wrap.json is missing: run with UPDATE_VECTORS=1");
      mkdirSync(new URL(".", VECTORS), { recursive: true });
      writeFileSync(
        VECTORS,
        `${JSON.stringify({ construction: "testigo key-wrap v1", vectors: makeVectors() }, null, 2)}\n`,
      );
    }
    const file = JSON.parse(readFileSync(VECTORS, "utf8")) as { vectors: KeyWrapVector[] };
    assert.equal(file.vectors.length, 3);
    for (const v of file.vectors) {
      const recipient = generateEncryptionKeyPair(fromHex(v.recipientSeed));
      assert.equal(toHex(recipient.publicKey), v.expected.recipientPublicKey, v.name);
      // Forward: the same inputs give the same bytes.
      const entry = wrapKey(
        fromHex(v.contentKey),
        recipient.publicKey,
        fromHex(v.associatedData),
        fromHex(v.ephemeralSeed),
      );
      assert.equal(toHex(entry.keyId), v.expected.keyId, v.name);
      assert.equal(toHex(entry.ephemeralPublicKey), v.expected.ephemeralPublicKey, v.name);
      assert.equal(toHex(entry.wrapped), v.expected.wrapped, v.name);
      assert.equal(toHex(encodeWrappedKey(entry)), v.expected.entry, v.name);
      // Backward: the stored bytes open to the stored content key.
      const stored = decodeWrappedKey(fromHex(v.expected.entry));
      assert.ok(stored, v.name);
      const opened = unwrapKey(stored, recipient, fromHex(v.associatedData));
      assert.equal(opened && toHex(opened), v.contentKey, v.name);
    }
  });
});

describe("wrapKey / unwrapKey", () => {
  it("key id is the first 8 bytes of the domain-separated hash of the public key", () => {
    const pk = generateEncryptionKeyPair().publicKey;
    assert.deepEqual(keyIdOf(pk), hashWithDomain(DOMAIN.keyId, 16, pk).subarray(0, 8));
  });

  it("round-trips any content key and associated data", () => {
    const recipient = generateEncryptionKeyPair();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        (contentKey, ad) => {
          const entry = wrapKey(contentKey, recipient.publicKey, ad);
          assert.equal(encodeWrappedKey(entry).length, WRAP_ENTRY_BYTES);
          assert.deepEqual(unwrapKey(entry, recipient, ad), contentKey);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("uses a fresh ephemeral key on every call", () => {
    const recipient = generateEncryptionKeyPair();
    const key = new Uint8Array(32);
    const a = wrapKey(key, recipient.publicKey, new Uint8Array());
    const b = wrapKey(key, recipient.publicKey, new Uint8Array());
    assert.notDeepEqual(a.ephemeralPublicKey, b.ephemeralPublicKey);
    assert.notDeepEqual(a.wrapped, b.wrapped);
  });

  it("refuses the wrong recipient, other associated data and any flipped bit", () => {
    const recipient = generateEncryptionKeyPair();
    const other = generateEncryptionKeyPair();
    const ad = new Uint8Array([1, 2, 3]);
    const entry = wrapKey(new Uint8Array(32).fill(7), recipient.publicKey, ad);
    assert.equal(unwrapKey(entry, other, ad), undefined);
    // Even with the key id forged to match, the other key cannot open it.
    assert.equal(unwrapKey({ ...entry, keyId: keyIdOf(other.publicKey) }, other, ad), undefined);
    assert.equal(unwrapKey(entry, recipient, new Uint8Array([1, 2, 4])), undefined);
    const bytes = encodeWrappedKey(entry);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const flipped = bytes.slice();
      flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
      const decoded = decodeWrappedKey(flipped);
      assert.ok(decoded);
      assert.equal(unwrapKey(decoded, recipient, ad), undefined, `bit ${bit}`);
    }
  });

  it("refuses low-order recipient keys and wrong sizes", () => {
    const key = new Uint8Array(32);
    assert.throws(() => wrapKey(key, new Uint8Array(32), new Uint8Array()), Malformed);
    const order8 = fromHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
    assert.throws(() => wrapKey(key, order8, new Uint8Array()), Malformed);
    assert.throws(
      () => wrapKey(new Uint8Array(31), generateEncryptionKeyPair().publicKey, new Uint8Array()),
      Malformed,
    );
    assert.throws(() => wrapKey(key, new Uint8Array(31), new Uint8Array()), Malformed);
    assert.equal(decodeWrappedKey(new Uint8Array(87)), undefined);
    const recipient = generateEncryptionKeyPair();
    const entry = wrapKey(key, recipient.publicKey, new Uint8Array());
    assert.equal(
      unwrapKey({ ...entry, ephemeralPublicKey: new Uint8Array(32) }, recipient, new Uint8Array()),
      undefined,
    );
    assert.equal(unwrapKey({ ...entry, wrapped: entry.wrapped.subarray(1) }, recipient, new Uint8Array()), undefined);
  });
});
