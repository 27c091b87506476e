import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { z } from "zod";
import { fromBase64url, toBase64url, utf8 } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { DecryptionFailed } from "./errors.js";
import { generateSigningKeyPair, signWithDomain } from "./keys.js";
import { openSignedDocument, signDocument } from "./signed-document.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

const note = z.strictObject({ text: z.string().max(100), n: z.number().int() });

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
  return copy;
}

describe("signed documents", () => {
  it("round-trip any valid value, and the payload is exactly the signer's JSON", () => {
    const key = generateSigningKeyPair();
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), fc.integer(), (text, n) => {
        const doc = signDocument(DOMAIN.controlSignature, { text, n }, note, key.privateKey);
        assert.deepEqual(openSignedDocument(DOMAIN.controlSignature, doc, note, key.publicKey), { text, n });
        assert.deepEqual(fromBase64url(doc.payload), utf8(JSON.stringify({ text, n })));
      }),
    );
  });

  it("refuses to sign a value its own schema rejects", () => {
    const key = generateSigningKeyPair();
    assert.throws(() => signDocument(DOMAIN.controlSignature, { text: "x", n: 1.5 }, note, key.privateKey));
  });

  it("rejects any bit flip in payload or signature, another domain and another key", () => {
    const key = generateSigningKeyPair();
    const doc = signDocument(DOMAIN.controlSignature, { text: "wipe", n: 7 }, note, key.privateKey);
    // Opened first, so the genuine document is in the cache of verified documents: no forgery
    // below may profit from that.
    assert.deepEqual(openSignedDocument(DOMAIN.controlSignature, doc, note, key.publicKey), { text: "wipe", n: 7 });
    const payload = fromBase64url(doc.payload) as Uint8Array;
    const sig = fromBase64url(doc.signature) as Uint8Array;
    for (let bit = 0; bit < payload.length * 8; bit++) {
      const forged = { payload: toBase64url(flipBit(payload, bit)), signature: doc.signature };
      assert.throws(() => openSignedDocument(DOMAIN.controlSignature, forged, note, key.publicKey), DecryptionFailed);
    }
    for (let bit = 0; bit < sig.length * 8; bit++) {
      const forged = { payload: doc.payload, signature: toBase64url(flipBit(sig, bit)) };
      assert.throws(() => openSignedDocument(DOMAIN.controlSignature, forged, note, key.publicKey), DecryptionFailed);
    }
    assert.throws(() => openSignedDocument(DOMAIN.reportSignature, doc, note, key.publicKey), DecryptionFailed);
    const other = generateSigningKeyPair();
    assert.throws(() => openSignedDocument(DOMAIN.controlSignature, doc, note, other.publicKey), DecryptionFailed);
  });

  it("still verifies documents once the cache of verified documents has been turned over", () => {
    const key = generateSigningKeyPair();
    const first = signDocument(DOMAIN.controlSignature, { text: "first", n: 0 }, note, key.privateKey);
    assert.deepEqual(openSignedDocument(DOMAIN.controlSignature, first, note, key.publicKey), { text: "first", n: 0 });
    for (let n = 1; n <= 600; n++) {
      const doc = signDocument(DOMAIN.controlSignature, { text: "filler", n }, note, key.privateKey);
      assert.equal(openSignedDocument(DOMAIN.controlSignature, doc, note, key.publicKey).n, n);
    }
    assert.deepEqual(openSignedDocument(DOMAIN.controlSignature, first, note, key.publicKey), { text: "first", n: 0 });
    const other = generateSigningKeyPair();
    assert.throws(() => openSignedDocument(DOMAIN.controlSignature, first, note, other.publicKey), DecryptionFailed);
  });

  it("rejects signed bytes that are not valid JSON, not the schema, or carry unknown keys", () => {
    const key = generateSigningKeyPair();
    for (const text of ['{"text":"a","n":1,"extra":true}', '{"text":"a"}', "not json", '{"text":"a","n":1}x']) {
      const bytes = utf8(text);
      const doc = {
        payload: toBase64url(bytes),
        signature: toBase64url(signWithDomain(DOMAIN.controlSignature, bytes, key.privateKey)),
      };
      assert.throws(() => openSignedDocument(DOMAIN.controlSignature, doc, note, key.publicKey), DecryptionFailed);
    }
    const invalidUtf8 = new Uint8Array([0x22, 0xff, 0x22]);
    const doc = {
      payload: toBase64url(invalidUtf8),
      signature: toBase64url(signWithDomain(DOMAIN.controlSignature, invalidUtf8, key.privateKey)),
    };
    assert.throws(() => openSignedDocument(DOMAIN.controlSignature, doc, note, key.publicKey), DecryptionFailed);
  });

  it("rejects malformed wire values of any type with DecryptionFailed", () => {
    const key = generateSigningKeyPair();
    const good = signDocument(DOMAIN.controlSignature, { text: "a", n: 1 }, note, key.privateKey);
    const bad: unknown[] = [
      null,
      undefined,
      42,
      "text",
      [],
      {},
      { payload: good.payload },
      { ...good, extra: 1 },
      { payload: `${good.payload}=`, signature: good.signature },
      { payload: good.payload, signature: `${good.signature}A` },
    ];
    for (const value of bad) {
      assert.throws(() => openSignedDocument(DOMAIN.controlSignature, value, note, key.publicKey), DecryptionFailed);
    }
  });
});
