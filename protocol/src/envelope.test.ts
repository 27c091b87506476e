import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { concatBytes, fromHex, toBase64url, toHex, u32be, utf8 } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { envelopeBucketOf, INNER_FRAMING_BYTES, openEnvelope, sealEnvelope } from "./envelope.js";
import { encodeEnvelopeHeader, envelopeLength, readEnvelopeHeader } from "./envelope-header.js";
import { DecryptionFailed, Malformed, TextRejected } from "./errors.js";
import { encodeWrappedKey, wrapKey } from "./key-wrap.js";
import {
  type EncryptionKeyPair,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  type SigningKeyPair,
  signWithDomain,
} from "./keys.js";
import { BUCKET_SIZES, bucketFor, bucketSize, MAX_INNER_BYTES, MIN_BUCKET_BYTES } from "./padding.js";
import { xchachaEncrypt } from "./primitives.js";
import { encodeInnerMessage, type InnerMessage, REPORT_KIND } from "./report.js";
import { ALL_KINDS, maximalShortMessage, messageOf, SHORT_KINDS } from "./report-arbitraries.test.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

const VECTORS = new URL("../test-vectors/envelope.json", import.meta.url);

function seedOf(byte: number, length = 32): Uint8Array {
  return new Uint8Array(length).map((_, i) => (byte + i) & 0xff);
}

const campaignA = () => toBase64url(seedOf(0x40, 16));
const campaignB = () => toBase64url(seedOf(0x41, 16));
const idOf = (byte: number) => toBase64url(seedOf(byte, 16));

const always = () => true;

function expectDecryptionFailed(run: () => unknown, label = ""): void {
  assert.throws(run, (error: unknown) => error instanceof DecryptionFailed, label);
}

/** Builds an envelope straight from the spec with primitives, so the layout is checked independently. */
function sealByHand(input: {
  campaignId: string;
  messageId: string;
  sender: SigningKeyPair;
  recipients: readonly Uint8Array[];
  json: Uint8Array;
  contentKey: Uint8Array;
  nonce: Uint8Array;
  seeds: readonly Uint8Array[];
  signedHeader?: Uint8Array; // sign over another header (transplant attack)
  paddingByte?: number; // non-zero padding
  bucket?: number;
}): Uint8Array {
  const bucket = input.bucket ?? bucketFor(INNER_FRAMING_BYTES + input.json.length);
  const header = encodeEnvelopeHeader({
    version: 1,
    campaignId: input.campaignId,
    messageId: input.messageId,
    bucket,
    recipientCount: input.recipients.length,
  });
  const signature = signWithDomain(
    DOMAIN.reportSignature,
    concatBytes(input.signedHeader ?? header, input.json),
    input.sender.privateKey,
  );
  const padded = new Uint8Array(bucketSize(bucket) as number).fill(input.paddingByte ?? 0);
  padded.set(concatBytes(input.sender.publicKey, signature, u32be(input.json.length), input.json));
  const entries = input.recipients.map((pk, i) =>
    encodeWrappedKey(wrapKey(input.contentKey, pk, header, input.seeds[i] as Uint8Array)),
  );
  const ciphertext = xchachaEncrypt(padded, concatBytes(header, ...entries), input.nonce, input.contentKey);
  return concatBytes(header, ...entries, input.nonce, ciphertext);
}

interface EnvelopeVector {
  name: string;
  campaignId: string;
  senderSeed: string;
  recipientSeeds: string[];
  contentKey: string;
  nonce: string;
  ephemeralSeeds: string[];
  message: InnerMessage;
  expected: { senderPublicKey: string; bucket: number; length: number; envelope: string };
}

function vectorCases(): Omit<EnvelopeVector, "expected">[] {
  const campaignId = campaignA();
  const photo = {
    photoId: toBase64url(seedOf(0x70, 16)),
    key: toBase64url(seedOf(0x71)),
    header: toBase64url(seedOf(0x72, 24)),
    sha256: toBase64url(seedOf(0x73)),
    size: 1_234_567,
    chunkCount: 19,
  };
  const common = { v: 1 as const, campaignId, seq: 7, sentAt: 1722211200000, table: "1401023.3" };
  const messages: { name: string; recipients: number; message: InnerMessage }[] = [
    {
      name: "status to two coordinator devices",
      recipients: 2,
      message: { kind: "status", ...common, messageId: idOf(1), text: "Mesa instalada, testigo presente ✓" },
    },
    {
      name: "duress to two coordinator devices",
      recipients: 2,
      message: { kind: "duress", ...common, messageId: idOf(2), text: "Mesa instalada, testigo presente ✓" },
    },
    {
      name: "acta with tallies and two photos to three devices",
      recipients: 3,
      message: {
        kind: "acta",
        ...common,
        messageId: idOf(3),
        text: "",
        tallies: { EGU: 1234, NM: 321, NULOS: 4 },
        photos: [photo, { ...photo, photoId: toBase64url(seedOf(0x74, 16)), size: 65536, chunkCount: 1 }],
      },
    },
    {
      name: "enrolled to one device",
      recipients: 1,
      message: {
        kind: "enrolled",
        ...common,
        messageId: idOf(4),
        text: "",
        invite: {
          nonce: toBase64url(seedOf(0x82).subarray(0, 8)),
          storedHash: toBase64url(seedOf(0x80)),
          proof: toBase64url(seedOf(0x81)),
        },
        encryptionKey: toBase64url(generateEncryptionKeyPair(seedOf(0x82)).publicKey),
      },
    },
  ];
  return messages.map((m, n) => ({
    name: m.name,
    campaignId,
    senderSeed: toHex(seedOf(0x10 + n)),
    recipientSeeds: Array.from({ length: m.recipients }, (_, i) => toHex(seedOf(0x20 + i))),
    contentKey: toHex(seedOf(0x30 + n)),
    nonce: toHex(seedOf(0x50 + n, 24)),
    ephemeralSeeds: Array.from({ length: m.recipients }, (_, i) => toHex(seedOf(0x60 + 8 * n + i))),
    message: m.message,
  }));
}

function sealVector(v: Omit<EnvelopeVector, "expected">) {
  return sealEnvelope({
    campaignId: v.campaignId,
    sender: generateSigningKeyPair(fromHex(v.senderSeed)),
    recipients: v.recipientSeeds.map((seed) => generateEncryptionKeyPair(fromHex(seed))),
    message: v.message,
    fixed: {
      contentKey: fromHex(v.contentKey),
      nonce: fromHex(v.nonce),
      ephemeralSeeds: v.ephemeralSeeds.map(fromHex),
    },
  });
}

describe("envelope golden vectors", () => {
  it("match the checked-in file in both directions (UPDATE_VECTORS=1 regenerates it)", () => {
    if (process.env.UPDATE_VECTORS === "1" || !existsSync(VECTORS)) {
      assert.equal(process.env.UPDATE_VECTORS, "1", "test-vectors/envelope.json is missing: run with UPDATE_VECTORS=1");
      const vectors: EnvelopeVector[] = vectorCases().map((v) => {
        const sealed = sealVector(v).envelope;
        return {
          ...v,
          expected: {
            senderPublicKey: toHex(generateSigningKeyPair(fromHex(v.senderSeed)).publicKey),
            bucket: readEnvelopeHeader(sealed).bucket,
            length: sealed.length,
            envelope: toHex(sealed),
          },
        };
      });
      mkdirSync(new URL(".", VECTORS), { recursive: true });
      writeFileSync(VECTORS, `${JSON.stringify({ format: "testigo envelope v1", vectors }, null, 2)}\n`);
    }
    const file = JSON.parse(readFileSync(VECTORS, "utf8")) as { vectors: EnvelopeVector[] };
    assert.equal(file.vectors.length, 4);
    for (const v of file.vectors) {
      // Forward: fixed inputs give exactly the stored bytes.
      const sealed = sealVector(v);
      assert.equal(toHex(sealed.envelope), v.expected.envelope, v.name);
      assert.equal(sealed.messageId, v.message.messageId, v.name);
      // Backward: every recipient opens the stored bytes to the stored message.
      const bytes = fromHex(v.expected.envelope);
      assert.equal(bytes.length, v.expected.length, v.name);
      for (const seed of v.recipientSeeds) {
        const opened = openEnvelope(bytes, {
          campaignId: v.campaignId,
          recipient: generateEncryptionKeyPair(fromHex(seed)),
          senderKnown: (key) => toHex(key) === v.expected.senderPublicKey,
        });
        assert.deepEqual(opened.message, v.message, v.name);
        assert.equal(opened.header.bucket, v.expected.bucket, v.name);
        assert.equal(toHex(opened.senderSigningKey), v.expected.senderPublicKey, v.name);
      }
    }
  });

  it("equal an envelope built by hand from the specification", () => {
    for (const v of vectorCases()) {
      const byHand = sealByHand({
        campaignId: v.campaignId,
        messageId: v.message.messageId,
        sender: generateSigningKeyPair(fromHex(v.senderSeed)),
        recipients: v.recipientSeeds.map((seed) => generateEncryptionKeyPair(fromHex(seed)).publicKey),
        // The JSON is the schema-validated message, keys in schema order (encodeInnerMessage).
        json: encodeInnerMessage(v.message),
        contentKey: fromHex(v.contentKey),
        nonce: fromHex(v.nonce),
        seeds: v.ephemeralSeeds.map(fromHex),
      });
      assert.equal(toHex(sealVector(v).envelope), toHex(byHand), v.name);
    }
  });
});

describe("sealEnvelope / openEnvelope", () => {
  const sender = () => generateSigningKeyPair(seedOf(0x90));
  const devices = () => [0xa0, 0xa1, 0xa2].map((b) => generateEncryptionKeyPair(seedOf(b)));

  it("round-trips every kind, for every recipient, picking the entry by key id", () => {
    const volunteer = sender();
    const keys = devices();
    const retired = generateEncryptionKeyPair();
    for (const kind of ALL_KINDS) {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 16, maxLength: 16 }).chain((id) => messageOf(kind, campaignA(), toBase64url(id))),
          fc.integer({ min: 1, max: 3 }),
          (message, count) => {
            const recipients = keys.slice(0, count);
            const { envelope, messageId } = sealEnvelope({
              campaignId: campaignA(),
              sender: volunteer,
              recipients,
              message,
            });
            assert.equal(messageId, message.messageId);
            const header = readEnvelopeHeader(envelope);
            assert.equal(envelope.length, envelopeLength(header.bucket, count));
            assert.equal(envelopeBucketOf(message), header.bucket);
            for (const recipient of recipients) {
              const opened = openEnvelope(envelope, {
                campaignId: campaignA(),
                recipient: [retired, recipient],
                senderKnown: (key) => (toHex(key) === toHex(volunteer.publicKey) ? { pseudonym: "v-x" } : undefined),
              });
              assert.deepEqual(opened.message, message);
              assert.deepEqual(opened.sender, { pseudonym: "v-x" });
              assert.deepEqual(opened.senderSigningKey, volunteer.publicKey);
            }
          },
        ),
        { numRuns: 15 },
      );
    }
  });

  it("puts every short kind, filled to its limits, in bucket 0: same size on the wire", () => {
    const lengths = new Set<number>();
    for (const kind of SHORT_KINDS) {
      const message = maximalShortMessage(kind, campaignA(), idOf(9));
      const { envelope } = sealEnvelope({ campaignId: campaignA(), sender: sender(), recipients: devices(), message });
      assert.equal(readEnvelopeHeader(envelope).bucket, 0, kind);
      lengths.add(envelope.length);
    }
    assert.deepEqual([...lengths], [envelopeLength(0, 3)]);
  });

  it("turns any single-bit flip anywhere in an envelope into DecryptionFailed", () => {
    const volunteer = sender();
    const [device] = devices() as [EncryptionKeyPair];
    const message = maximalShortMessage(REPORT_KIND.status, campaignA(), idOf(5));
    const { envelope } = sealEnvelope({ campaignId: campaignA(), sender: volunteer, recipients: [device], message });
    const options = { campaignId: campaignA(), recipient: device, senderKnown: always };
    assert.equal(openEnvelope(envelope, options).message.kind, REPORT_KIND.status);
    // Exhaustively for this envelope (1187 bytes)...
    for (let bit = 0; bit < envelope.length * 8; bit++) {
      const flipped = envelope.slice();
      flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
      expectDecryptionFailed(() => openEnvelope(flipped, options), `bit ${bit}`);
    }
    // ...and sampled for envelopes of every kind.
    fc.assert(
      fc.property(
        fc.constantFrom(...ALL_KINDS).chain((kind) => messageOf(kind, campaignA(), idOf(6))),
        fc.nat(),
        (m, position) => {
          const sealed = sealEnvelope({ campaignId: campaignA(), sender: volunteer, recipients: [device], message: m });
          const bit = position % (sealed.envelope.length * 8);
          sealed.envelope[bit >> 3] = (sealed.envelope[bit >> 3] as number) ^ (1 << (bit & 7));
          expectDecryptionFailed(() => openEnvelope(sealed.envelope, options));
        },
      ),
      { numRuns: 100 },
    );
  });

  it("rejects a wrong recipient, a wrong campaign and a signer that is not enrolled", () => {
    const volunteer = sender();
    const [a, b] = devices() as [EncryptionKeyPair, EncryptionKeyPair];
    const message = maximalShortMessage(REPORT_KIND.checkin, campaignA(), idOf(7));
    const { envelope } = sealEnvelope({ campaignId: campaignA(), sender: volunteer, recipients: [a], message });
    expectDecryptionFailed(() =>
      openEnvelope(envelope, { campaignId: campaignA(), recipient: b, senderKnown: always }),
    );
    expectDecryptionFailed(() =>
      openEnvelope(envelope, { campaignId: campaignA(), recipient: [], senderKnown: always }),
    );
    expectDecryptionFailed(() =>
      openEnvelope(envelope, { campaignId: campaignB(), recipient: a, senderKnown: always }),
    );
    for (const verdict of [false, undefined, null]) {
      expectDecryptionFailed(() =>
        openEnvelope(envelope, { campaignId: campaignA(), recipient: a, senderKnown: () => verdict }),
      );
    }
    // A look-up that itself fails is not a forged report: its error reaches the caller.
    assert.throws(
      () =>
        openEnvelope(envelope, {
          campaignId: campaignA(),
          recipient: a,
          senderKnown: () => {
            throw new RangeError("storage offline");
          },
        }),
      RangeError,
    );
  });

  it("rejects truncated, extended, empty and foreign-version envelopes", () => {
    const [a] = devices() as [EncryptionKeyPair];
    const message = maximalShortMessage(REPORT_KIND.status, campaignA(), idOf(8));
    const { envelope } = sealEnvelope({ campaignId: campaignA(), sender: sender(), recipients: [a], message });
    const options = { campaignId: campaignA(), recipient: a, senderKnown: always };
    for (const bad of [
      envelope.subarray(0, envelope.length - 1),
      concatBytes(envelope, new Uint8Array(1)),
      new Uint8Array(0),
      envelope.subarray(0, 35),
      concatBytes(new Uint8Array([2]), envelope.subarray(1)),
    ]) {
      expectDecryptionFailed(() => openEnvelope(bad, options), `length ${bad.length}`);
    }
  });

  it("rejects a signature made for another envelope, non-zero padding and a forged length", () => {
    const volunteer = sender();
    const [a] = devices() as [EncryptionKeyPair];
    const json = utf8(
      JSON.stringify(maximalShortMessage(REPORT_KIND.status, campaignA(), idOf(11)) satisfies InnerMessage),
    );
    const base = {
      campaignId: campaignA(),
      messageId: idOf(11),
      sender: volunteer,
      recipients: [a.publicKey],
      json,
      contentKey: seedOf(1),
      nonce: seedOf(2, 24),
      seeds: [seedOf(3)],
    };
    const options = { campaignId: campaignA(), recipient: a, senderKnown: always };
    assert.equal(openEnvelope(sealByHand(base), options).message.messageId, idOf(11));
    // The volunteer signed this JSON for message id 12; moved under id 11 it must not open.
    const otherHeader = encodeEnvelopeHeader({
      version: 1,
      campaignId: campaignA(),
      messageId: idOf(12),
      bucket: 0,
      recipientCount: 1,
    });
    expectDecryptionFailed(() => openEnvelope(sealByHand({ ...base, signedHeader: otherHeader }), options));
    expectDecryptionFailed(() => openEnvelope(sealByHand({ ...base, paddingByte: 1 }), options));
    // The JSON's message id must equal the header's, even when correctly signed.
    expectDecryptionFailed(() => openEnvelope(sealByHand({ ...base, messageId: idOf(12) }), options));
    // A well-signed document that fails the schema.
    const loose = utf8(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(json)), extra: 1 }));
    expectDecryptionFailed(() => openEnvelope(sealByHand({ ...base, json: loose }), options));
    // A larger bucket than needed is allowed (cover traffic); the padding is still checked.
    assert.equal(openEnvelope(sealByHand({ ...base, bucket: 3 }), options).header.bucket, 3);
  });

  it("refuses to seal inconsistent input", () => {
    const [a, b] = devices() as [EncryptionKeyPair, EncryptionKeyPair];
    const message = maximalShortMessage(REPORT_KIND.status, campaignA(), idOf(13));
    const seal = (o: Partial<Parameters<typeof sealEnvelope>[0]>) =>
      sealEnvelope({ campaignId: campaignA(), sender: sender(), recipients: [a, b], message, ...o });
    assert.equal(seal({ messageId: idOf(13) }).messageId, idOf(13));
    assert.throws(() => seal({ messageId: idOf(14) }), Malformed);
    assert.throws(() => seal({ campaignId: campaignB() }), Malformed);
    assert.throws(() => seal({ recipients: [] }), Malformed);
    assert.throws(() => seal({ recipients: [a, a] }), Malformed);
    assert.throws(() => seal({ recipients: [{ publicKey: new Uint8Array(32) }] }), Malformed);
    // Text a person must change is TEXT_REJECTED, naming the field; the rest of the schema is Malformed.
    for (const text of ["\u0000", "a\u202eb", "x\u200dy", "l\u2028m"]) {
      assert.throws(
        () => seal({ message: { ...message, text } }),
        (error) => error instanceof TextRejected && error.code === "TEXT_REJECTED" && error.field === "text",
        JSON.stringify(text),
      );
    }
    assert.throws(
      () => seal({ message: { ...message, table: "14\u200b01" } }),
      (error) => error instanceof TextRejected && error.field === "table",
    );
    assert.throws(() => seal({ message: { ...message, seq: -1 } }), Malformed);
    assert.throws(
      () => seal({ fixed: { contentKey: seedOf(1), nonce: seedOf(2, 24), ephemeralSeeds: [] } }),
      Malformed,
    );
  });
});

describe("padding buckets", () => {
  it("waste at most 12% for every inner length from 1025 bytes to the largest bucket", () => {
    let worst = 0;
    for (let length = MIN_BUCKET_BYTES + 1; length <= MAX_INNER_BYTES; length++) {
      const size = bucketSize(bucketFor(length)) as number;
      assert.ok(size >= length);
      worst = Math.max(worst, (size - length) / length);
    }
    assert.ok(worst <= 0.12, `worst overhead ${worst}`);
    assert.equal(bucketFor(1), 0);
    assert.equal(bucketFor(MIN_BUCKET_BYTES), 0);
    assert.ok((BUCKET_SIZES.at(-1) as number) >= MAX_INNER_BYTES);
  });

  // Review finding S2: the spec's formula computed in exact integers differed from the code's
  // floating-point table from bucket 39 on (45,232 vs 45,248 bytes). The code now uses integers
  // and the table below is normative (SPEC.md §8, envelopes.md §4).
  it("bucket table exact integers: matches the normative table and the integer rule", () => {
    const NORMATIVE = [
      1024, 1136, 1264, 1392, 1536, 1696, 1872, 2064, 2272, 2512, 2768, 3056, 3376, 3728, 4112, 4528, 4992, 5504, 6064,
      6672, 7344, 8080, 8896, 9792, 10784, 11872, 13072, 14384, 15824, 17408, 19152, 21072, 23184, 25504, 28064, 30880,
      33968, 37376, 41120, 45232, 49760, 54736, 60224, 66256, 72896, 80192, 88224, 97056, 106768, 117456, 129216,
      142144, 156368, 172016, 189232, 208160, 228976, 251888, 277088,
    ];
    assert.deepEqual(BUCKET_SIZES, NORMATIVE);
    for (let i = 1; i < BUCKET_SIZES.length; i++) {
      const previous: bigint = BigInt(BUCKET_SIZES[i - 1] as number);
      // ceil(previous × 11 / 160) × 16, in BigInt: no rounding anywhere.
      const expected: bigint = ((previous * 11n + 159n) / 160n) * 16n;
      assert.equal(BigInt(BUCKET_SIZES[i] as number), expected, `bucket ${i}`);
    }
  });
});
