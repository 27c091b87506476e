// fast-check generators of valid inner messages, shared by report.test.ts and envelope.test.ts.
// (A *.test.ts file so that it is never part of the published package; it registers no tests.)
import fc from "fast-check";
import { toBase64url } from "./bytes.js";
import { generateSigningKeyPair } from "./keys.js";
import { MAX_PHOTO_BYTES, photoChunkCount } from "./photo.js";
import {
  type InnerMessage,
  innerMessage,
  MAX_PHOTOS_PER_ACTA,
  MAX_TALLY_COUNT,
  REPORT_KIND,
  type ReportKind,
  SECURITY_NOTICE_REASONS,
  TEXT_MAX_JSON_BYTES,
} from "./report.js";

export const ALL_KINDS: readonly ReportKind[] = Object.values(REPORT_KIND);
/** The kinds that must share bucket 0. */
export const SHORT_KINDS: readonly ReportKind[] = ALL_KINDS.filter((kind) => kind !== REPORT_KIND.acta);

export function bytesB64(length: number): fc.Arbitrary<string> {
  return fc.uint8Array({ minLength: length, maxLength: length }).map(toBase64url);
}

const code = fc.stringMatching(/^[A-Za-z0-9.-]{1,32}$/);

// Printable ASCII up to the character limit, or any Unicode (filtered by the schema below).
const text = fc.oneof(fc.string({ maxLength: 500 }), fc.string({ unit: "grapheme", maxLength: 120 }));

// The chunk count follows from the size (photoChunkCount), as the schema requires.
const photo = fc
  .record({
    photoId: bytesB64(16),
    key: bytesB64(32),
    header: bytesB64(24),
    sha256: bytesB64(32),
    size: fc.integer({ min: 1, max: MAX_PHOTO_BYTES }),
  })
  .map((ref) => ({ ...ref, chunkCount: photoChunkCount(ref.size) }));

/** A decoy's cover marker (duress-and-wipe.md §2.4), present or absent (undefined drops out through JSON). */
function cover(): fc.Arbitrary<true | undefined> {
  return fc.constantFrom(true as const, undefined);
}

function extrasFor(kind: ReportKind): fc.Arbitrary<Record<string, unknown>> {
  switch (kind) {
    case REPORT_KIND.acta:
      return fc
        .record({
          tallies: fc.dictionary(code, fc.integer({ min: 0, max: MAX_TALLY_COUNT }), {
            maxKeys: 64,
            noNullPrototype: true,
          }),
          photos: fc.array(photo, { maxLength: MAX_PHOTOS_PER_ACTA }),
          cover: cover(),
        })
        .filter((a) => a.photos.length > 0 || Object.keys(a.tallies).length > 0);
    case REPORT_KIND.enrolled:
      return fc.record({
        invite: fc.record({ nonce: bytesB64(8), storedHash: bytesB64(32), proof: bytesB64(32) }),
        encryptionKey: bytesB64(32),
        duressKey: fc.constant(toBase64url(generateSigningKeyPair().publicKey)),
        duressProof: bytesB64(64),
        text: fc.constant(""),
      });
    case REPORT_KIND.wipeAck:
      return fc.record({ counter: fc.nat() });
    case REPORT_KIND.securityNotice:
      return fc.record({ reason: fc.constantFrom(...SECURITY_NOTICE_REASONS) });
    case REPORT_KIND.status:
      return fc.record({ cover: cover() });
    case REPORT_KIND.checkin:
    case REPORT_KIND.duress:
      return fc.constant({});
    default: {
      const unreachable: never = kind;
      throw new Error(`no generator for ${String(unreachable)}`);
    }
  }
}

/** A valid message of `kind` for the given campaign and message id. */
export function messageOf(kind: ReportKind, campaignId: string, messageId: string): fc.Arbitrary<InnerMessage> {
  return (
    fc
      .record({
        seq: fc.maxSafeNat(),
        sentAt: fc.integer({ min: 0, max: 8.64e15 }),
        table: code,
        text,
        extras: extrasFor(kind),
      })
      // Through JSON: fast-check may build null-prototype objects, which deepEqual tells apart.
      .map(({ extras, ...common }) =>
        JSON.parse(JSON.stringify({ v: 1, kind, campaignId, messageId, ...common, ...extras })),
      )
      .filter((m) => innerMessage.safeParse(m).success) as fc.Arbitrary<InnerMessage>
  );
}

/** The largest message of a short kind: every field at its bound, text at its byte budget. */
export function maximalShortMessage(kind: ReportKind, campaignId: string, messageId: string): InnerMessage {
  const max = toBase64url(new Uint8Array(32).fill(0xff));
  const extras: Record<string, unknown> = {
    [REPORT_KIND.enrolled]: {
      invite: { nonce: toBase64url(new Uint8Array(8).fill(0xff)), storedHash: max, proof: max },
      encryptionKey: max,
      // Every Ed25519 public key is 43 base64url characters; an enrolled report carries no text.
      duressKey: toBase64url(generateSigningKeyPair().publicKey),
      // Every Ed25519 signature is 86 base64url characters.
      duressProof: toBase64url(new Uint8Array(64).fill(0xff)),
      text: "",
    },
    // A decoy's cover items carry the marker (duress-and-wipe.md §2.4): they must still fit bucket 0.
    [REPORT_KIND.status]: { cover: true },
    [REPORT_KIND.wipeAck]: { counter: Number.MAX_SAFE_INTEGER },
    [REPORT_KIND.securityNotice]: { reason: "replayed-control" },
  };
  return innerMessage.parse({
    v: 1,
    kind,
    campaignId,
    messageId,
    seq: Number.MAX_SAFE_INTEGER,
    sentAt: 8.64e15,
    table: "T".repeat(32),
    // '"' costs two bytes in JSON: the worst case per character for allowed text.
    text: '"'.repeat(TEXT_MAX_JSON_BYTES / 2),
    ...(extras[kind] as object | undefined),
  });
}
