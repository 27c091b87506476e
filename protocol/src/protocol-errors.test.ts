// Every failure in @testigo/protocol is a ProtocolError with a literal code (errors.ts): never a
// bare TypeError, RangeError, Error or ZodError, so a caller can switch over `code` and the relay
// can map every failure to a typed 4xx. Opening functions fail with the one DecryptionFailed
// (SPEC.md §11). This file feeds arbitrary input — arbitrary lengths, numbers, strings and, where
// a parameter is `unknown`, arbitrary values — to every exported function that parses, decodes,
// opens, verifies or checks, and to the encoders and helpers that take numbers or lengths.
// (hostile-input.test.ts mutates valid wire data; this file covers breadth.)
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { z } from "zod";
import * as authModule from "./auth.js";
import { fromBase64url, fromHex, fromUtf8, randomBytes, readU32be, toBase64url, u32be, u64be } from "./bytes.js";
import { openControl, sealControl } from "./control.js";
import { DOMAIN } from "./domain.js";
import { openEnvelope, sealEnvelope } from "./envelope.js";
import { encodeEnvelopeHeader, envelopeLength, readEnvelopeHeader } from "./envelope-header.js";
import { createEpochKey, openEpochKey, selectEpochKeys } from "./epoch-keys.js";
import { isProtocolError, TextRejected } from "./errors.js";
import * as protocol from "./index.js";
import {
  decodeInvite,
  encodeInvite,
  fromCrockfordBase32,
  groupCheck,
  inviteProof,
  inviteRedeemToken,
  inviteStoredHash,
  relayUrlProblem,
  verifyInviteProof,
} from "./invite.js";
import { deriveInviteSecret, inviteNonceOf, isCampaignInviteSecret, newInviteSecret } from "./invite-secret.js";
import { decodeWrappedKey, encodeWrappedKey, keyIdOf, unwrapKey, wrapKey } from "./key-wrap.js";
import {
  campaignIdFromRootKey,
  generateDeviceKeys,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  hashWithDomain,
  pseudonymFromKeys,
  signWithDomain,
  toCrockfordBase32,
  verifyWithDomain,
} from "./keys.js";
import { bucketFor, bucketSize } from "./padding.js";
import { isValidPhotoRef, openPhoto, PhotoOpener, PhotoSealer, photoChunkAd, photoChunkCount } from "./photo.js";
import {
  chachaIetfDecrypt,
  chachaIetfEncrypt,
  ed25519Sign,
  ed25519Verify,
  isUsableX25519PublicKey,
  x25519,
  xchachaDecrypt,
  xchachaEncrypt,
} from "./primitives.js";
import {
  checkInnerMessage,
  checkReportText,
  checkTableCode,
  encodeInnerMessage,
  reportTextProblem,
  tableCodeProblem,
} from "./report.js";
import {
  acceptRoster,
  campaignIdFromFingerprint,
  createRoster,
  formatRosterFingerprint,
  rosterDeviceKeys,
  rosterFingerprint,
  verifyRoster,
} from "./roster.js";
import { openSignedDocument, signDocument, unverifiedPayloadBytes } from "./signed-document.js";
import { initSodium } from "./sodium.js";

const NOW = 1_722_124_800_000;

/** Runs `run`; fails unless it returned or threw a ProtocolError with a string code. */
function onlyProtocolErrors(name: string, run: () => unknown): void {
  try {
    run();
  } catch (error) {
    assert.ok(
      isProtocolError(error) && typeof error.code === "string" && error.code.length > 0,
      `${name} threw ${String((error as Error)?.name)}: ${String((error as Error)?.message)}`,
    );
  }
}

const bytes = (maxLength = 200) => fc.uint8Array({ maxLength });
const anyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.integer({ min: -5, max: 70 }),
  fc.double(),
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    0.5,
    2 ** 32,
    2 ** 32 - 1,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    -1,
  ),
);
const anyText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.constantFrom("", "T1-", "https://relay.example.org", "__proto__", "\u202e", "\ud800", "a\u0000b"),
);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ withNullPrototype: true, withTypedArray: true, maxDepth: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom<unknown>(undefined, null, [], {}, "", 0, Number.NaN, new Uint8Array(3)),
);
const labels = fc.constantFrom(...Object.values(DOMAIN));

describe("only ProtocolError escapes, whatever the input", () => {
  let root: ReturnType<typeof generateSigningKeyPair>;
  let coordinator: ReturnType<typeof generateDeviceKeys>;
  let volunteer: ReturnType<typeof generateDeviceKeys>;
  let campaignId = "";
  let rosterValue: ReturnType<typeof verifyRoster>;

  before(async () => {
    await initSodium();
    root = generateSigningKeyPair();
    coordinator = generateDeviceKeys();
    volunteer = generateDeviceKeys();
    campaignId = campaignIdFromRootKey(root.publicKey);
    const signed = createRoster({
      root,
      serial: 1,
      issuedAt: NOW,
      devices: [
        { id: "laptop-1", encryptionKey: coordinator.encryption.publicKey, signingKey: coordinator.signing.publicKey },
      ],
    });
    rosterValue = verifyRoster(signed, rosterFingerprint(root.publicKey));
  });

  it("byte and integer helpers: fromUtf8, fromBase64url, fromHex, readU32be, u32be, u64be, randomBytes", () => {
    fc.assert(
      fc.property(bytes(), anyText, anyNumber, (b, text, n) => {
        onlyProtocolErrors("fromUtf8", () => fromUtf8(b));
        onlyProtocolErrors("fromBase64url", () => fromBase64url(text));
        onlyProtocolErrors("fromHex", () => fromHex(text));
        onlyProtocolErrors("readU32be", () => readU32be(b, n));
        onlyProtocolErrors("u32be", () => u32be(n));
        onlyProtocolErrors("u64be", () => u64be(n));
        if (!(n > 4096)) onlyProtocolErrors("randomBytes", () => randomBytes(n));
      }),
      { numRuns: 400 },
    );
  });

  it("sizes and layouts: bucketFor, bucketSize, envelopeLength, photoChunkCount, photoChunkAd, groupCheck", () => {
    fc.assert(
      fc.property(
        anyNumber,
        anyNumber,
        bytes(40),
        fc.array(anyNumber, { maxLength: 6 }),
        fc.boolean(),
        (a, b, id, ds, last) => {
          onlyProtocolErrors("bucketFor", () => bucketFor(a));
          onlyProtocolErrors("bucketSize", () => bucketSize(a));
          onlyProtocolErrors("envelopeLength", () => envelopeLength(a, b));
          onlyProtocolErrors("photoChunkCount", () => photoChunkCount(a));
          onlyProtocolErrors("photoChunkAd", () => photoChunkAd(id, a, b));
          onlyProtocolErrors("groupCheck", () => groupCheck(a, ds, last));
          onlyProtocolErrors("PhotoSealer", () => new PhotoSealer(a).finish());
        },
      ),
      { numRuns: 400 },
    );
  });

  it("envelopes: readEnvelopeHeader, openEnvelope, encodeEnvelopeHeader, sealEnvelope", () => {
    fc.assert(
      fc.property(bytes(600), anyText, anyText, anyNumber, anyNumber, anyValue, (b, c, m, bucket, count, message) => {
        onlyProtocolErrors("readEnvelopeHeader", () => readEnvelopeHeader(b));
        onlyProtocolErrors("openEnvelope", () =>
          openEnvelope(b, { campaignId, recipient: coordinator.encryption, senderKnown: () => true }),
        );
        onlyProtocolErrors("encodeEnvelopeHeader", () =>
          encodeEnvelopeHeader({ version: 1, campaignId: c, messageId: m, bucket, recipientCount: count }),
        );
        onlyProtocolErrors("sealEnvelope", () =>
          sealEnvelope({
            campaignId,
            sender: volunteer.signing,
            recipients: [coordinator.encryption],
            message: message as never,
          }),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("inner messages: checkInnerMessage, encodeInnerMessage and the text checks", () => {
    fc.assert(
      fc.property(anyValue, anyText, (value, text) => {
        onlyProtocolErrors("checkInnerMessage", () => checkInnerMessage(value as never));
        onlyProtocolErrors("encodeInnerMessage", () => encodeInnerMessage(value as never));
        onlyProtocolErrors("reportTextProblem", () => reportTextProblem(text));
        onlyProtocolErrors("tableCodeProblem", () => tableCodeProblem(text));
        onlyProtocolErrors("checkReportText", () => checkReportText(text));
        onlyProtocolErrors("checkTableCode", () => checkTableCode(text));
        const status = {
          v: 1,
          kind: "status",
          campaignId,
          messageId: toBase64url(new Uint8Array(16)),
          seq: 1,
          sentAt: NOW,
          table: "1",
          text,
        };
        onlyProtocolErrors("checkInnerMessage(text)", () => checkInnerMessage(status as never));
        onlyProtocolErrors("checkInnerMessage(table)", () => checkInnerMessage({ ...status, table: text } as never));
      }),
      { numRuns: 400 },
    );
  });

  it("invites and invite secrets: decode, encode, tokens, proofs", () => {
    fc.assert(
      fc.property(anyText, bytes(40), bytes(40), bytes(40), bytes(40), (text, a, b, c, d) => {
        onlyProtocolErrors("decodeInvite", () => decodeInvite(text));
        onlyProtocolErrors("fromCrockfordBase32", () => fromCrockfordBase32(text));
        onlyProtocolErrors("relayUrlProblem", () => relayUrlProblem(text));
        onlyProtocolErrors("encodeInvite", () => encodeInvite({ relayUrl: text, rootFingerprint: a, secret: b }));
        onlyProtocolErrors("encodeInvite(url)", () =>
          encodeInvite({ relayUrl: "https://relay.example.org", rootFingerprint: a, secret: b }),
        );
        onlyProtocolErrors("inviteRedeemToken", () => inviteRedeemToken(a));
        onlyProtocolErrors("inviteStoredHash", () => inviteStoredHash(a));
        onlyProtocolErrors("inviteProof", () => inviteProof(a, b, c));
        onlyProtocolErrors("verifyInviteProof", () => verifyInviteProof(a, b, c, d));
        onlyProtocolErrors("deriveInviteSecret", () => deriveInviteSecret(a, b));
        onlyProtocolErrors("newInviteSecret", () => newInviteSecret(a));
        onlyProtocolErrors("inviteNonceOf", () => inviteNonceOf(a));
        onlyProtocolErrors("isCampaignInviteSecret", () => isCampaignInviteSecret(a, b));
      }),
      { numRuns: 300 },
    );
  });

  it("keys, signatures and primitives of any length", () => {
    fc.assert(
      fc.property(labels, anyNumber, bytes(100), bytes(100), bytes(100), bytes(100), (label, n, a, b, c, d) => {
        onlyProtocolErrors("verifyWithDomain", () => verifyWithDomain(label, a, b, c));
        onlyProtocolErrors("signWithDomain", () => signWithDomain(label, a, b));
        onlyProtocolErrors("hashWithDomain", () => hashWithDomain(label, n, a));
        onlyProtocolErrors("generateSigningKeyPair", () => generateSigningKeyPair(a));
        onlyProtocolErrors("generateEncryptionKeyPair", () => generateEncryptionKeyPair(a));
        onlyProtocolErrors("campaignIdFromRootKey", () => campaignIdFromRootKey(a));
        onlyProtocolErrors("pseudonymFromKeys", () => pseudonymFromKeys({ signingKey: a, encryptionKey: b }));
        onlyProtocolErrors("toCrockfordBase32", () => toCrockfordBase32(a));
        onlyProtocolErrors("x25519", () => x25519(a, b));
        onlyProtocolErrors("isUsableX25519PublicKey", () => isUsableX25519PublicKey(a));
        onlyProtocolErrors("ed25519Sign", () => ed25519Sign(a, b));
        onlyProtocolErrors("ed25519Verify", () => ed25519Verify(a, b, c));
        onlyProtocolErrors("xchachaEncrypt", () => xchachaEncrypt(a, b, c, d));
        onlyProtocolErrors("xchachaDecrypt", () => xchachaDecrypt(a, b, c, d));
        onlyProtocolErrors("chachaIetfEncrypt", () => chachaIetfEncrypt(a, b, c, d));
        onlyProtocolErrors("chachaIetfDecrypt", () => chachaIetfDecrypt(a, b, c, d));
        onlyProtocolErrors("keyIdOf", () => keyIdOf(a));
        onlyProtocolErrors("wrapKey", () => wrapKey(a, b, c, d.length % 2 === 0 ? d : undefined));
        onlyProtocolErrors("decodeWrappedKey/unwrapKey", () => {
          const entry = decodeWrappedKey(a);
          if (entry !== undefined) unwrapKey(entry, coordinator.encryption, b);
        });
        onlyProtocolErrors("encodeWrappedKey", () => encodeWrappedKey({ keyId: a, ephemeralPublicKey: b, wrapped: c }));
      }),
      { numRuns: 300 },
    );
  });

  it("rosters, epoch keys and signed documents, from any value", () => {
    fc.assert(
      fc.property(anyValue, anyValue, anyNumber, bytes(40), anyText, (doc, other, n, b, text) => {
        onlyProtocolErrors("verifyRoster", () => verifyRoster(doc, b));
        onlyProtocolErrors("openEpochKey", () => openEpochKey(doc, b));
        onlyProtocolErrors("unverifiedPayloadBytes", () => unverifiedPayloadBytes(doc));
        onlyProtocolErrors("openSignedDocument", () => openSignedDocument(DOMAIN.rosterSignature, doc, z.unknown(), b));
        onlyProtocolErrors("signDocument", () =>
          signDocument(DOMAIN.rosterSignature, doc as never, z.strictObject({ a: z.number() }), root.privateKey),
        );
        onlyProtocolErrors("selectEpochKeys(map)", () => selectEpochKeys(doc as never, rosterValue, NOW));
        onlyProtocolErrors("selectEpochKeys(roster)", () => selectEpochKeys({}, doc as never, NOW));
        onlyProtocolErrors("selectEpochKeys(now)", () => selectEpochKeys({}, rosterValue, n));
        onlyProtocolErrors("acceptRoster", () => acceptRoster(rosterValue, { ...rosterValue, serial: n }));
        onlyProtocolErrors("rosterDeviceKeys", () =>
          rosterDeviceKeys({ id: "x", encryptionKey: text, signingKey: text }),
        );
        onlyProtocolErrors("rosterFingerprint", () => rosterFingerprint(b));
        onlyProtocolErrors("campaignIdFromFingerprint", () => campaignIdFromFingerprint(b));
        onlyProtocolErrors("formatRosterFingerprint", () => formatRosterFingerprint(b));
        onlyProtocolErrors("createRoster", () =>
          createRoster({
            root,
            serial: n,
            issuedAt: n,
            devices: [{ id: text, encryptionKey: b, signingKey: b, label: text }],
          }),
        );
        onlyProtocolErrors("createEpochKey", () =>
          createEpochKey({
            campaignId: text,
            deviceId: text,
            epoch: n,
            deviceSigningKey: b,
            periodMs: typeof other === "number" ? other : n,
          }),
        );
        onlyProtocolErrors("isValidPhotoRef", () => isValidPhotoRef(doc as never));
        onlyProtocolErrors("PhotoOpener", () => new PhotoOpener(doc as never));
        onlyProtocolErrors("openPhoto", () => openPhoto(doc as never, [b]));
      }),
      { numRuns: 300 },
    );
  });

  it("control messages: openControl on any bytes, sealControl on any payload", () => {
    const pseudonym = pseudonymFromKeys({
      signingKey: volunteer.signing.publicKey,
      encryptionKey: volunteer.encryption.publicKey,
    });
    const signers = new Map([["laptop-1", coordinator.signing.publicKey]]);
    fc.assert(
      fc.property(bytes(1100), anyValue, bytes(40), (b, payload, key) => {
        onlyProtocolErrors("openControl", () =>
          openControl(b, {
            campaignId,
            me: { pseudonym, encryption: volunteer.encryption },
            signers,
            lastCounterOf: () => 0,
            now: NOW,
          }),
        );
        onlyProtocolErrors("sealControl", () =>
          sealControl({
            campaignId,
            to: { pseudonym, encryptionKey: key },
            signer: { deviceId: "laptop-1", signing: coordinator.signing },
            payload: payload as never,
          }),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("every exported zod schema: safeParse never throws", () => {
    const schemas = Object.entries(protocol).filter(([, value]) => value instanceof z.ZodType) as [string, z.ZodType][];
    assert.ok(schemas.length > 20, `found ${schemas.length} schemas`);
    fc.assert(
      fc.property(anyValue, (value) => {
        for (const [name, schema] of schemas) onlyProtocolErrors(name, () => schema.safeParse(value));
      }),
      { numRuns: 200 },
    );
  });

  it("covers every exported parse / decode / open / verify / check function", () => {
    // auth.ts is helper R's (auth.test.ts and hostile-input.test.ts fuzz it).
    const elsewhere = new Set(Object.keys(authModule));
    const covered = new Set(
      [
        acceptRoster,
        checkInnerMessage,
        checkReportText,
        checkTableCode,
        decodeInvite,
        decodeWrappedKey,
        fromBase64url,
        fromCrockfordBase32,
        fromHex,
        fromUtf8,
        isCampaignInviteSecret,
        isUsableX25519PublicKey,
        isValidPhotoRef,
        openControl,
        openEnvelope,
        openEpochKey,
        openPhoto,
        openSignedDocument,
        readEnvelopeHeader,
        readU32be,
        selectEpochKeys,
        unverifiedPayloadBytes,
        verifyInviteProof,
        verifyRoster,
        verifyWithDomain,
      ].map((f) => f.name),
    );
    const decoders = Object.entries(protocol)
      .filter(([name, value]) => typeof value === "function" && !elsewhere.has(name))
      .map(([name]) => name)
      .filter((name) => /^(open|decode|read|parse|verify|from|unverified|select|accept|check)[A-Z0-9]/.test(name));
    const missing = decoders.filter((name) => !covered.has(name));
    assert.deepEqual(missing, [], "add these to this file's fuzzing");
  });
});

describe("errors carry literal codes", () => {
  it("TextRejected names the field and never repeats the text", () => {
    const secret = "Mesa 7: soldiers at the door\u202e";
    try {
      checkReportText(secret);
      assert.fail("accepted");
    } catch (error) {
      assert.ok(error instanceof TextRejected);
      assert.equal(error.code, "TEXT_REJECTED");
      assert.equal(error.field, "text");
      assert.match(error.message, /U\+202E/);
      assert.ok(!error.message.includes("soldiers"));
    }
  });

  it("using the library before initSodium() is SodiumNotReady, not a bare Error", () => {
    const index = fileURLToPath(new URL("./index.js", import.meta.url));
    const script = `
      const p = await import(${JSON.stringify(index)});
      try { p.generateSigningKeyPair(); console.log("no error"); }
      catch (e) { console.log(JSON.stringify({ code: e.code, protocol: p.isProtocolError(e) })); }`;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout.trim()), { code: "SODIUM_NOT_READY", protocol: true });
  });
});

describe("apiPath", () => {
  it("a missing route parameter is Malformed, not a RangeError", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("campaignId", "photoId", "index", "other"), anyText), (params) => {
        onlyProtocolErrors("apiPath", () => protocol.apiPath(protocol.API.putChunk, params));
      }),
      { numRuns: 100 },
    );
    assert.throws(() => protocol.apiPath(protocol.API.putChunk, { campaignId: "abc" }), { code: "MALFORMED" });
  });
});
