import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { toBase64url } from "./bytes.js";
import { INNER_FRAMING_BYTES } from "./envelope.js";
import { Malformed, TextRejected } from "./errors.js";
import { bucketFor, MIN_BUCKET_BYTES } from "./padding.js";
import { MAX_PHOTO_BYTES, photoChunkCount } from "./photo.js";
import {
  checkInnerMessage,
  checkReportText,
  checkTableCode,
  encodeInnerMessage,
  type InnerMessage,
  innerMessage,
  jsonStringBytes,
  photoRef,
  REPORT_KIND,
  reportTextProblem,
  TEXT_MAX_CHARS,
  TEXT_MAX_JSON_BYTES,
  tableCodeProblem,
} from "./report.js";
import { ALL_KINDS, maximalShortMessage, messageOf, SHORT_KINDS } from "./report-arbitraries.test.js";
import { initSodium } from "./sodium.js";

let campaignId = "";
let messageId = "";

before(async () => {
  await initSodium();
  campaignId = toBase64url(new Uint8Array(16).fill(1));
  messageId = toBase64url(new Uint8Array(16).fill(2));
});

function status(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 1,
    kind: REPORT_KIND.status,
    campaignId,
    messageId,
    seq: 0,
    sentAt: 1722211200000,
    table: "1401023.3",
    text: "Acta impresa",
    ...overrides,
  };
}

describe("inner message schemas", () => {
  it("accepts generated messages of every kind and round-trips them through JSON", () => {
    for (const kind of ALL_KINDS) {
      fc.assert(
        fc.property(messageOf(kind, campaignId, messageId), (message) => {
          const decoded = innerMessage.parse(JSON.parse(new TextDecoder().decode(encodeInnerMessage(message))));
          assert.deepEqual(decoded, message);
        }),
        { numRuns: 50 },
      );
    }
  });

  it("rejects unknown keys, unknown kinds and wrong versions", () => {
    assert.equal(innerMessage.safeParse(status()).success, true);
    assert.equal(innerMessage.safeParse(status({ extra: 1 })).success, false);
    assert.equal(innerMessage.safeParse(status({ kind: "gossip" })).success, false);
    assert.equal(innerMessage.safeParse(status({ v: 2 })).success, false);
    assert.equal(innerMessage.safeParse(status({ counter: 1 })).success, false);
    const missing = status();
    delete missing.table;
    assert.equal(innerMessage.safeParse(missing).success, false);
  });

  it("bounds every field", () => {
    const bad: Record<string, unknown>[] = [
      { table: "" },
      { table: "x".repeat(33) },
      { table: "a/b" },
      { table: "__proto__" },
      { seq: -1 },
      { seq: 1.5 },
      { seq: Number.MAX_SAFE_INTEGER + 1 },
      { sentAt: -1 },
      { sentAt: 8.64e15 + 1 },
      { text: "a".repeat(TEXT_MAX_CHARS + 1) },
      { text: "é".repeat(TEXT_MAX_JSON_BYTES / 2 + 1) },
      { text: "bell\u0007" },
      { text: "lone \ud800 surrogate" },
      { messageId: "short" },
      { campaignId: toBase64url(new Uint8Array(15)) },
    ];
    for (const override of bad) {
      assert.equal(innerMessage.safeParse(status(override)).success, false, JSON.stringify(override));
    }
    for (const good of [{ text: "" }, { text: "línea 1\nlínea 2\t✓" }, { text: "a".repeat(TEXT_MAX_CHARS) }]) {
      assert.equal(innerMessage.safeParse(status(good)).success, true, JSON.stringify(good));
    }
  });

  it("bounds actas: tallies, photos and their consistency", () => {
    const photo = {
      photoId: toBase64url(new Uint8Array(16)),
      key: toBase64url(new Uint8Array(32)),
      header: toBase64url(new Uint8Array(24)),
      sha256: toBase64url(new Uint8Array(32)),
      size: 70_000,
      chunkCount: 2,
    };
    const acta = (o: Record<string, unknown>) => status({ kind: REPORT_KIND.acta, tallies: {}, photos: [photo], ...o });
    assert.equal(innerMessage.safeParse(acta({})).success, true);
    assert.equal(innerMessage.safeParse(acta({ photos: [], tallies: { EGU: 10, NM: 3 } })).success, true);
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`c${i}`, 1]));
    const bad: Record<string, unknown>[] = [
      { photos: [] },
      { photos: Array(9).fill(photo) },
      { photos: [{ ...photo, chunkCount: 1 }] },
      { photos: [{ ...photo, size: 0 }] },
      { photos: [{ ...photo, extra: true }] },
      { photos: [{ ...photo, header: photo.key }] },
      { tallies: tooMany },
      { tallies: { EGU: -1 } },
      { tallies: { EGU: 1.5 } },
      { tallies: { "bad key": 1 } },
    ];
    for (const override of bad) {
      assert.equal(innerMessage.safeParse(acta(override)).success, false, JSON.stringify(override).slice(0, 80));
    }
  });

  // Review finding H2: the schema accepted size <= chunkCount x 64 KiB, so a signed acta could
  // carry a chunk count the opener refuses; the report is now refused as a whole.
  it("photo ref poison: chunkCount must be exactly photoChunkCount(size)", () => {
    const ref = (size: number, chunkCount: number) => ({
      photoId: toBase64url(new Uint8Array(16)),
      key: toBase64url(new Uint8Array(32)),
      header: toBase64url(new Uint8Array(24)),
      sha256: toBase64url(new Uint8Array(32)),
      size,
      chunkCount,
    });
    assert.equal(photoRef.safeParse(ref(1, 2)).success, false);
    assert.equal(photoRef.safeParse(ref(1, 1)).success, true);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_PHOTO_BYTES }), fc.integer({ min: 1, max: 512 }), (size, count) => {
        assert.equal(photoRef.safeParse(ref(size, count)).success, count === photoChunkCount(size));
        assert.equal(photoRef.safeParse(ref(size, photoChunkCount(size))).success, true);
      }),
      { numRuns: 300 },
    );
  });

  // Review finding L5: bidi overrides and zero-width characters make a report display differently
  // from what it says; report text refuses format characters (\p{Cf}) like notices and labels.
  it("report text format characters are refused", () => {
    for (const text of [
      "\u202eabc",
      "a\u200bb",
      "x\u2066y\u2069",
      "soft\u00adhyphen",
      "\ufeffbom",
      "a\u200dz",
      "\u061c",
    ]) {
      assert.equal(innerMessage.safeParse(status({ text })).success, false, JSON.stringify(text));
    }
    assert.equal(innerMessage.safeParse(status({ text: "Mesa 3 ✓ 👍🏽 café" })).success, true);
  });

  it("measures text in JSON bytes", () => {
    assert.equal(jsonStringBytes("abc"), 3);
    assert.equal(jsonStringBytes('"\\'), 4);
    assert.equal(jsonStringBytes("é😀"), 6);
  });
});

describe("bucket 0 holds every short kind", () => {
  it("with every field at its bound", () => {
    for (const kind of SHORT_KINDS) {
      const message: InnerMessage = maximalShortMessage(kind, campaignId, messageId);
      const inner = INNER_FRAMING_BYTES + encodeInnerMessage(message).length;
      assert.ok(inner <= MIN_BUCKET_BYTES, `${kind}: ${inner} bytes`);
      assert.equal(bucketFor(inner), 0, kind);
    }
  });

  it("for any generated message of a short kind", () => {
    for (const kind of SHORT_KINDS) {
      fc.assert(
        fc.property(messageOf(kind, campaignId, messageId), (message) => {
          assert.equal(bucketFor(INNER_FRAMING_BYTES + encodeInnerMessage(message).length), 0);
        }),
        { numRuns: 50 },
      );
    }
  });
});

// Task P: report text and table codes refuse control and format characters (and the Unicode line
// separators) with TEXT_REJECTED, so a coordinator's terminal or spreadsheet shows what was sent.
describe("typed fields: TEXT_REJECTED with a reason, before the schema", () => {
  const spoofers = [
    "\u202e", // right-to-left override
    "\u202d", // left-to-right override
    "\u2066", // left-to-right isolate
    "\u200b", // zero-width space
    "\u200d", // zero-width joiner
    "\u2060", // word joiner
    "\u00ad", // soft hyphen
    "\ufeff", // byte-order mark
    "\u0000",
    "\u001b", // ESC: terminal escape sequences
    "\r", // carriage return: overwrites a terminal line
    "\u0085", // next line (C1)
    "\u009b", // CSI (C1)
    "\u2028", // line separator
    "\u2029", // paragraph separator
    "\ud800", // lone surrogate
  ];

  it("refuses each spoofing character anywhere in the text, and names it by code point only", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...spoofers),
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        (bad, a, b) => {
          const text = `${a.replace(/[^ -~]/g, "")}${bad}${b.replace(/[^ -~]/g, "")}`;
          assert.match(reportTextProblem(text) ?? "", /U\+[0-9A-F]{4}/);
          assert.equal(innerMessage.safeParse(status({ text })).success, false);
          assert.throws(
            () => checkReportText(text),
            (error) =>
              error instanceof TextRejected &&
              error.code === "TEXT_REJECTED" &&
              error.field === "text" &&
              (a.length < 4 || !error.message.includes(a)),
          );
          assert.throws(
            () => encodeInnerMessage(status({ text }) as InnerMessage),
            (error) => error instanceof TextRejected && error.field === "text",
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it("accepts ordinary text in any script, with tab and newline", () => {
    for (const text of ["", "Acta impresa 14:05", "línea 1\nlínea 2\t✓", "Урна опечатана", "投票箱 ✓ 👍🏽", "شاهد"]) {
      assert.equal(reportTextProblem(text), undefined, text);
      checkReportText(text);
    }
  });

  it("table and tally codes: ASCII letters, digits, '.' and '-' only", () => {
    for (const table of ["1401023.3", "A-1", "x".repeat(32)]) {
      assert.equal(tableCodeProblem(table), undefined);
      checkTableCode(table);
    }
    for (const table of [
      "",
      "x".repeat(33),
      "14 01",
      "1401\u200b023",
      "\u202e1401",
      "１４",
      "14\u00a0",
      "=1+1",
      "a/b",
    ]) {
      assert.notEqual(tableCodeProblem(table), undefined, JSON.stringify(table));
      assert.throws(
        () => checkTableCode(table),
        (error) => error instanceof TextRejected && error.field === "table",
      );
      assert.throws(
        () => encodeInnerMessage(status({ table }) as InnerMessage),
        (error) => error instanceof TextRejected && error.field === "table",
      );
    }
    const acta = status({ kind: REPORT_KIND.acta, tallies: { "EGU\u200b": 1 }, photos: [] }) as InnerMessage;
    assert.throws(
      () => encodeInnerMessage(acta),
      (error) => error instanceof TextRejected && error.field === "table",
    );
  });

  it("other schema violations stay Malformed", () => {
    assert.throws(() => encodeInnerMessage(status({ seq: -1 }) as InnerMessage), Malformed);
    assert.throws(() => encodeInnerMessage(status({ kind: "gossip" }) as InnerMessage), Malformed);
    assert.throws(() => checkInnerMessage(null as unknown as InnerMessage), Malformed);
  });
});

// A decoy's cover items (duress-and-wipe.md §2.4) carry `cover: true` inside the sealed message.
describe("the cover marker", () => {
  it("is `true` or absent, on status and acta reports only", () => {
    const base = maximalShortMessage(REPORT_KIND.status, campaignId, messageId);
    assert.equal(innerMessage.safeParse({ ...base, cover: true }).success, true);
    for (const wrong of [false, 1, "true", null]) {
      assert.equal(innerMessage.safeParse({ ...base, cover: wrong }).success, false, String(wrong));
    }
    for (const kind of SHORT_KINDS.filter((k) => k !== REPORT_KIND.status)) {
      const message = maximalShortMessage(kind, campaignId, messageId);
      assert.equal(innerMessage.safeParse({ ...message, cover: true }).success, false, kind);
    }
    const acta = { ...base, kind: REPORT_KIND.acta, tallies: { A: 1 }, photos: [] };
    assert.equal(innerMessage.safeParse({ ...acta, cover: true }).success, true);
    assert.equal(innerMessage.safeParse({ ...acta, cover: false }).success, false);
  });
});
