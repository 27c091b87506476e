// The inner message of an envelope: what a volunteer's device says to the coordinators. Only
// coordinators ever see it (it is signed, padded and encrypted by envelope.ts).
//
// Every bound here exists so that (a) a hostile sender cannot make a coordinator parse an
// unbounded document and (b) every short kind, filled to its limits, still fits bucket 0 (1024
// bytes with the envelope's 100-byte framing) — so status, duress and check-in are the same size
// on the wire. report.test.ts checks (b) for every kind.
import { z } from "zod";
import { ed25519PublicKey } from "./api/invites.js";
import { utf8 } from "./bytes.js";
import { Malformed, TextRejected } from "./errors.js";
import { MAX_PHOTO_CHUNKS, PHOTO_CHUNK_PLAINTEXT_BYTES } from "./limits.js";
import { photoChunkCount } from "./photo.js";
import { base64urlBytes, campaignId, messageId, signature, timestamp, x25519PublicKey } from "./schemas/common.js";

export const REPORT_VERSION = 1;

/** The kinds of inner message, the single place their wire names are spelled. */
export const REPORT_KIND = {
  status: "status",
  acta: "acta",
  duress: "duress",
  checkin: "checkin",
  enrolled: "enrolled",
  wipeAck: "wipe-ack",
  securityNotice: "security-notice",
} as const;

export type ReportKind = (typeof REPORT_KIND)[keyof typeof REPORT_KIND];

/** Characters of free text a volunteer may type (UTF-16 code units, as JavaScript counts). */
export const TEXT_MAX_CHARS = 500;
/**
 * Bytes the text may take inside the JSON (UTF-8, after JSON escaping). This, not the character
 * count, is what keeps every short kind inside bucket 0: 500 characters of Cyrillic or emoji
 * would not fit.
 */
export const TEXT_MAX_JSON_BYTES = 512;
export const TABLE_CODE_PATTERN = /^[A-Za-z0-9.-]{1,32}$/;
export const MAX_TALLY_ENTRIES = 64;
export const MAX_TALLY_COUNT = 10_000_000;
export const MAX_PHOTOS_PER_ACTA = 8;

// Control characters other than tab and newline (C0, DEL, C1), format characters (bidi overrides
// and isolates, zero-width joiners and spaces, soft hyphen...: they make text display differently
// from what it says, in a coordinator's terminal or spreadsheet), the Unicode line and paragraph
// separators (line breaks that are not "\n") and lone UTF-16 surrogates: none belongs in a
// report, and C0 and surrogates would each cost 6 bytes of JSON escaping. Notices and device
// labels refuse control and format characters too.
const FORBIDDEN_TEXT = /(?![\t\n])\p{Cc}|\p{Cf}|\p{Cs}|\p{Zl}|\p{Zp}/u;

/** Bytes a string occupies inside JSON, without its surrounding quotes. */
export function jsonStringBytes(text: string): number {
  return utf8(JSON.stringify(text)).length - 2;
}

function codePoint(character: string): string {
  return `U+${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Why `text` cannot be a report's text, or undefined if it can. The reason names the offending
 * character by code point only (the text itself may be sensitive and reasons end up in logs).
 */
export function reportTextProblem(text: string): string | undefined {
  if (typeof text !== "string") return "the text must be a string";
  if (text.length > TEXT_MAX_CHARS) return `the text is longer than ${TEXT_MAX_CHARS} characters: shorten it`;
  const bad = FORBIDDEN_TEXT.exec(text);
  if (bad !== null) {
    return `the text contains ${codePoint(bad[0])}, an invisible control or formatting character that can make it display as something it does not say: remove it`;
  }
  if (jsonStringBytes(text) > TEXT_MAX_JSON_BYTES) {
    return `the text takes more than ${TEXT_MAX_JSON_BYTES} bytes (accented letters and emoji take several): shorten it`;
  }
  return undefined;
}

/** Why `table` cannot be a table code (or a tally option code), or undefined if it can. */
export function tableCodeProblem(table: string): string | undefined {
  if (typeof table !== "string") return "the table code must be a string";
  if (TABLE_CODE_PATTERN.test(table)) return undefined;
  return "the table code must be 1 to 32 of the ASCII characters A-Z a-z 0-9 . - (no spaces, accents or other characters)";
}

/** Throws TextRejected (code TEXT_REJECTED) if `text` cannot be a report's text. */
export function checkReportText(text: string): void {
  const problem = reportTextProblem(text);
  if (problem !== undefined) throw new TextRejected("text", problem);
}

/** Throws TextRejected (code TEXT_REJECTED) if `table` cannot be a table code. */
export function checkTableCode(table: string): void {
  const problem = tableCodeProblem(table);
  if (problem !== undefined) throw new TextRejected("table", problem);
}

const text = z.string().superRefine((value, ctx) => {
  const problem = reportTextProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** A voting table's code, e.g. "1401023.3" (letters, digits, '.' and '-', up to 32). */
export const tableCode = z.string().regex(TABLE_CODE_PATTERN, "table code must be 1-32 of A-Z a-z 0-9 . -");

const common = {
  v: z.literal(REPORT_VERSION),
  messageId,
  campaignId,
  /** Per-volunteer counter: coordinators order and de-duplicate by (volunteer, seq). */
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  sentAt: timestamp,
  table: tableCode,
  text,
} as const;

/**
 * Marks a COVER item (status and acta reports): one a decoy profile queued, after a duress
 * unlock, in place of an item the erased real profile had queued, so that the decoy's outbox and
 * traffic keep the real one's shape (duress-and-wipe.md §2.4). Its text, tallies and photos are
 * invented: coordinators file it (only when the duress key signed it) as `duress`, flagged
 * `cover`, and never open its photos. Inside the sealed envelope only: the relay and the network
 * never see it.
 */
const cover = z.literal(true).optional();

export const statusReport = z.strictObject({ kind: z.literal(REPORT_KIND.status), ...common, cover });

/** Looks exactly like a status report in size and route; only its kind tells coordinators. */
export const duressReport = z.strictObject({ kind: z.literal(REPORT_KIND.duress), ...common });

export const checkinReport = z.strictObject({ kind: z.literal(REPORT_KIND.checkin), ...common });

/** photoChunkCount without throwing: zod may run the refinement below on an out-of-range size. */
function chunkCountFor(size: number): number | undefined {
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_PHOTO_CHUNKS * PHOTO_CHUNK_PLAINTEXT_BYTES)
    return undefined;
  return photoChunkCount(size);
}

/** Reference to an encrypted, chunked photo upload: everything needed to fetch, open and check it. */
export const photoRef = z
  .strictObject({
    photoId: base64urlBytes(16),
    key: base64urlBytes(32), // secretstream key
    header: base64urlBytes(24), // secretstream header
    sha256: base64urlBytes(32), // of the photo file as taken
    size: z
      .number()
      .int()
      .positive()
      .max(MAX_PHOTO_CHUNKS * PHOTO_CHUNK_PLAINTEXT_BYTES),
    chunkCount: z.number().int().positive().max(MAX_PHOTO_CHUNKS),
  })
  // Exactly the padded count the sealer uses (photo.ts): any other count would only make the
  // coordinator's opener fail later, and a report must be refused as a whole, up front.
  .refine((photo) => photo.chunkCount === chunkCountFor(photo.size), {
    message: "chunkCount must be photoChunkCount(size)",
  });

export type PhotoRef = z.infer<typeof photoRef>;

/** Candidate or option code → votes. Codes use the table-code alphabet (no "__proto__" games). */
export const tallies = z
  .record(tableCode, z.number().int().nonnegative().max(MAX_TALLY_COUNT))
  .refine((record) => Object.keys(record).length <= MAX_TALLY_ENTRIES, {
    message: `at most ${MAX_TALLY_ENTRIES} tally entries`,
  });

export const actaReport = z
  .strictObject({
    kind: z.literal(REPORT_KIND.acta),
    ...common,
    tallies,
    photos: z.array(photoRef).max(MAX_PHOTOS_PER_ACTA),
    cover,
  })
  .refine((acta) => acta.photos.length > 0 || Object.keys(acta.tallies).length > 0, {
    message: "an acta needs at least one photo or one tally",
  });

/** First message of a newly enrolled device: proves the invite and announces its encryption key. */
export const enrolledReport = z
  .strictObject({
    kind: z.literal(REPORT_KIND.enrolled),
    ...common,
    // No free text: the device writes none, and the room it would take is the duress key's and its
    // proof's (every field at its bound must still fit bucket 0).
    text: z.string().length(0, "an enrolled report carries no text"),
    /** nonce: the first half of the invite secret, from which any coordinator device recomputes it (invite-secret.ts). */
    invite: z.strictObject({ nonce: base64urlBytes(8), storedHash: base64urlBytes(32), proof: base64urlBytes(32) }),
    // Control messages (a wipe) are sealed to it: a low-order key would make every one fail.
    encryptionKey: x25519PublicKey,
    /**
     * The duress key D the device enrolled beside its signing key (duress-and-wipe.md §2):
     * coordinators take any envelope signed by D as this volunteer's, sent UNDER DURESS. Absent
     * only from devices that predate it.
     */
    duressKey: ed25519PublicKey.optional(),
    /**
     * Proof that this device holds D: D's signature over (campaign id, signing key, encryption key)
     * (`signDuressProof`, ../auth.ts). Coordinators accept `duressKey` only if it verifies; without
     * it, a relay that saw a victim's keys could announce them as its own device's duress key and
     * have the victim's reports filed as its own.
     */
    duressProof: signature.optional(),
  })
  .refine((enrolled) => enrolled.duressProof === undefined || enrolled.duressKey !== undefined, {
    message: "a duressProof needs the duressKey it proves",
    path: ["duressProof"],
  });

/** Acknowledges a wipe control message (by its counter) just before the device erases itself. */
export const wipeAckReport = z.strictObject({
  kind: z.literal(REPORT_KIND.wipeAck),
  ...common,
  counter: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
});

export const SECURITY_NOTICE_REASONS = [
  "forged-control", // a control message whose signature did not verify against the roster
  "replayed-control", // a counter already seen
  "expired-control", // past its expiry
] as const;

/** Sent when a device refuses a control message (e.g. a forged wipe), so coordinators know. */
export const securityNoticeReport = z.strictObject({
  kind: z.literal(REPORT_KIND.securityNotice),
  ...common,
  reason: z.enum(SECURITY_NOTICE_REASONS),
});

export const innerMessage = z.discriminatedUnion("kind", [
  statusReport,
  actaReport,
  duressReport,
  checkinReport,
  enrolledReport,
  wipeAckReport,
  securityNoticeReport,
]);

export type InnerMessage = z.infer<typeof innerMessage>;
export type StatusReport = z.infer<typeof statusReport>;
export type ActaReport = z.infer<typeof actaReport>;
export type DuressReport = z.infer<typeof duressReport>;
export type CheckinReport = z.infer<typeof checkinReport>;
export type EnrolledReport = z.infer<typeof enrolledReport>;
export type WipeAckReport = z.infer<typeof wipeAckReport>;
export type SecurityNoticeReport = z.infer<typeof securityNoticeReport>;

/**
 * Checks the fields a person typed (text, table, tally codes) first, so that a refusal carries
 * TEXT_REJECTED and says what to change, then the whole schema: Malformed.
 */
export function checkInnerMessage(message: InnerMessage): InnerMessage {
  const fields = (typeof message === "object" && message !== null ? message : {}) as Record<string, unknown>;
  if (typeof fields.text === "string") checkReportText(fields.text);
  if (typeof fields.table === "string") checkTableCode(fields.table);
  if (typeof fields.tallies === "object" && fields.tallies !== null) {
    for (const option of Object.keys(fields.tallies)) {
      if (tableCodeProblem(option) !== undefined) {
        throw new TextRejected("table", "a tally option code must be 1 to 32 of A-Z a-z 0-9 . -");
      }
    }
  }
  const parsed = innerMessage.safeParse(message);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`;
    throw new Malformed(`inner message does not match its schema${where}: ${issue?.message ?? "schema mismatch"}`);
  }
  return parsed.data;
}

/** The signed wire form of a validated message: UTF-8 JSON of exactly the schema's fields. */
export function encodeInnerMessage(message: InnerMessage): Uint8Array {
  return utf8(JSON.stringify(checkInnerMessage(message)));
}
