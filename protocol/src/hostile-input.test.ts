// Review finding L3: some exported functions let a TypeError or RangeError escape on hostile
// input, which a caller that switches over ProtocolError codes (or quarantines on
// DecryptionFailed) does not expect. Every open / verify / decode function that takes bytes or
// JSON from the network must throw only ProtocolError subclasses, or return a falsy result.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { verifyAuthStatement, verifyEnrollment } from "./auth.js";
import { concatBytes, fromBase64url, toBase64url } from "./bytes.js";
import { CONTROL_KIND, openControl, sealControl } from "./control.js";
import { DOMAIN } from "./domain.js";
import { openEnvelope, sealEnvelope } from "./envelope.js";
import { readEnvelopeHeader } from "./envelope-header.js";
import { createEpochKey, openEpochKey, selectEpochKeys } from "./epoch-keys.js";
import { isProtocolError } from "./errors.js";
import {
  decodeInvite,
  fromCrockfordBase32,
  inviteProof,
  inviteRedeemToken,
  inviteStoredHash,
  verifyInviteProof,
} from "./invite.js";
import { deriveInviteSecret, isCampaignInviteSecret } from "./invite-secret.js";
import { decodeWrappedKey, unwrapKey } from "./key-wrap.js";
import {
  campaignIdFromRootKey,
  generateDeviceKeys,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  pseudonymFromKeys,
  publicKeysOf,
  type SigningKeyPair,
} from "./keys.js";
import { openPhoto, type SealedPhotoRef, sealPhoto } from "./photo.js";
import { createRoster, formatRosterFingerprint, roster, rosterFingerprint, verifyRoster } from "./roster.js";
import { openSignedDocument } from "./signed-document.js";
import { initSodium } from "./sodium.js";

const NOW = 1_722_124_800_000;

/** Runs `run`; fails unless it returned or threw a ProtocolError. */
function onlyProtocolErrors(name: string, run: () => unknown): void {
  try {
    run();
  } catch (error) {
    assert.ok(
      isProtocolError(error),
      `${name} threw ${String((error as Error)?.name)}: ${String((error as Error)?.message)}`,
    );
  }
}

/** A valid byte string changed by one of: bit flip, truncation, extension, random bytes. */
function mutated(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.nat().map((bit) => {
      const out = valid.slice();
      const i = Math.floor(bit / 8) % Math.max(1, out.length);
      if (out.length > 0) out[i] = (out[i] as number) ^ (1 << (bit % 8));
      return out;
    }),
    fc.nat({ max: valid.length }).map((n) => valid.slice(0, n)),
    fc.uint8Array({ maxLength: 40 }).map((extra) => concatBytes(valid, extra)),
    fc.uint8Array({ maxLength: 2 * valid.length + 2 }),
  );
}

/** JSON-ish hostile values: wrong types, prototype keys, huge strings. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom<unknown>(
    null,
    undefined,
    [],
    {},
    5,
    "x",
    JSON.parse('{"__proto__":{"payload":"AA","signature":"AA"}}'),
    { payload: "A".repeat(100_000), signature: "A".repeat(86) },
    { payload: "AAAA", signature: "A".repeat(86), extra: 1 },
  ),
);

describe("hostile input: only ProtocolError subclasses are thrown", () => {
  let rootKeys: SigningKeyPair;
  let campaignId = "";
  let fingerprint: Uint8Array = new Uint8Array();
  let coordinator: ReturnType<typeof generateDeviceKeys>;
  let volunteer: ReturnType<typeof generateDeviceKeys>;
  let pseudonym = "";
  let rosterDoc: unknown;
  let epochDoc: unknown;

  before(async () => {
    await initSodium();
    rootKeys = generateSigningKeyPair();
    campaignId = campaignIdFromRootKey(rootKeys.publicKey);
    fingerprint = rosterFingerprint(rootKeys.publicKey);
    coordinator = generateDeviceKeys();
    volunteer = generateDeviceKeys();
    pseudonym = pseudonymFromKeys(publicKeysOf(volunteer));
    rosterDoc = createRoster({
      root: rootKeys,
      serial: 1,
      issuedAt: NOW,
      devices: [{ id: "laptop-1", ...publicKeysOf(coordinator) }],
    });
    epochDoc = createEpochKey({
      campaignId,
      deviceId: "laptop-1",
      epoch: Math.floor(NOW / 86_400_000),
      deviceSigningKey: coordinator.signing.privateKey,
    }).signed;
  });

  it("envelopes: openEnvelope and readEnvelopeHeader on mutated envelopes", () => {
    const epoch = generateEncryptionKeyPair();
    const { envelope } = sealEnvelope({
      campaignId,
      sender: volunteer.signing,
      recipients: [epoch],
      message: {
        v: 1,
        kind: "status",
        campaignId,
        messageId: toBase64url(new Uint8Array(16).fill(3)),
        seq: 1,
        sentAt: NOW,
        table: "1",
        text: "ok",
      },
    } as Parameters<typeof sealEnvelope>[0]);
    fc.assert(
      fc.property(mutated(envelope), (bytes) => {
        onlyProtocolErrors("openEnvelope", () =>
          openEnvelope(bytes, { campaignId, recipient: epoch, senderKnown: () => true }),
        );
        onlyProtocolErrors("readEnvelopeHeader", () => readEnvelopeHeader(bytes));
      }),
      { numRuns: 200 },
    );
  });

  it("control messages: openControl on mutated messages", () => {
    const { message } = sealControl({
      campaignId,
      to: { pseudonym, encryptionKey: volunteer.encryption.publicKey },
      signer: { deviceId: "laptop-1", signing: coordinator.signing },
      payload: {
        v: 1,
        kind: CONTROL_KIND.notice,
        campaignId,
        to: pseudonym,
        from: "laptop-1",
        counter: NOW,
        issuedAt: NOW,
        expiresAt: NOW + 3_600_000,
        text: "hello",
      },
    });
    const signers = new Map([["laptop-1", coordinator.signing.publicKey]]);
    fc.assert(
      fc.property(mutated(message), (bytes) => {
        onlyProtocolErrors("openControl", () =>
          openControl(bytes, {
            campaignId,
            me: { pseudonym, encryption: volunteer.encryption },
            signers,
            lastCounterOf: () => 0,
            now: NOW,
          }),
        );
      }),
      { numRuns: 100 },
    );
  });

  it("signed documents: verifyRoster, openEpochKey, openSignedDocument, selectEpochKeys", () => {
    const verified = verifyRoster(rosterDoc, fingerprint);
    const wire = rosterDoc as { payload: string; signature: string };
    const payload = fromBase64url(wire.payload) as Uint8Array;
    fc.assert(
      fc.property(
        fc.oneof(
          hostileValue,
          mutated(payload).map((p) => ({ ...wire, payload: toBase64url(p) })),
        ),
        (doc) => {
          onlyProtocolErrors("verifyRoster", () => verifyRoster(doc, fingerprint));
          onlyProtocolErrors("openEpochKey", () => openEpochKey(doc, coordinator.signing.publicKey));
          onlyProtocolErrors("openSignedDocument", () =>
            openSignedDocument(DOMAIN.rosterSignature, doc, roster, rootKeys.publicKey),
          );
          onlyProtocolErrors("selectEpochKeys(value)", () => selectEpochKeys({ "laptop-1": [doc] }, verified, NOW));
          onlyProtocolErrors("selectEpochKeys(map)", () =>
            selectEpochKeys({ "laptop-1": doc } as unknown as Record<string, unknown[]>, verified, NOW),
          );
          onlyProtocolErrors("selectEpochKeys(whole)", () =>
            selectEpochKeys(doc as Record<string, unknown[]>, verified, NOW),
          );
        },
      ),
      { numRuns: 300 },
    );
    assert.equal(selectEpochKeys({ "laptop-1": [epochDoc] }, verified, NOW).length, 1);
  });

  it("invites: decodeInvite and fromCrockfordBase32 on any text, secret helpers on any length", () => {
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: "binary", maxLength: 300 }),
      fc
        .string({ unit: fc.constantFrom(..."0123456789ABCDEFGHJKMNPQRSTVWXYZ-IOLUu ß\u0130\u212a\t\n"), maxLength: 80 })
        .map((s) => `T1-${s}`),
    );
    fc.assert(
      fc.property(text, (code) => {
        onlyProtocolErrors("decodeInvite", () => decodeInvite(code));
        onlyProtocolErrors("fromCrockfordBase32", () => fromCrockfordBase32(code));
      }),
      { numRuns: 500 },
    );
    const bytes = fc.uint8Array({ maxLength: 70 });
    fc.assert(
      fc.property(bytes, bytes, bytes, bytes, (a, b, c, d) => {
        onlyProtocolErrors("inviteProof", () => inviteProof(a, b, c));
        onlyProtocolErrors("inviteRedeemToken", () => inviteRedeemToken(a));
        onlyProtocolErrors("inviteStoredHash", () => inviteStoredHash(a));
        onlyProtocolErrors("verifyInviteProof", () => verifyInviteProof(a, b, c, d));
        onlyProtocolErrors("isCampaignInviteSecret", () => isCampaignInviteSecret(a, b));
        onlyProtocolErrors("deriveInviteSecret", () => deriveInviteSecret(a, b));
        onlyProtocolErrors("formatRosterFingerprint", () => formatRosterFingerprint(a));
        onlyProtocolErrors("verifyEnrollment", () => verifyEnrollment(a, b, c, d));
        onlyProtocolErrors("decodeWrappedKey/unwrapKey", () => {
          const entry = decodeWrappedKey(a);
          if (entry !== undefined) unwrapKey(entry, volunteer.encryption, b);
        });
        onlyProtocolErrors("verifyAuthStatement", () =>
          verifyAuthStatement(
            { campaignId, role: "volunteer", principal: pseudonym, challenge: toBase64url(b) } as never,
            toBase64url(c),
            d,
          ),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("photos: openPhoto with mutated references and chunks", () => {
    const sealed = sealPhoto(new Uint8Array(70_000).fill(7));
    const field = fc.constantFrom("photoId", "key", "header", "sha256", "size", "chunkCount");
    const numbers = fc.constantFrom(0, -1, 1.5, Number.NaN, 2 ** 40, 3, 1e300, Number.POSITIVE_INFINITY);
    fc.assert(
      fc.property(field, numbers, fc.nat(), fc.nat({ max: 1 }), (f, n, bit, which) => {
        const value = sealed.ref[f];
        const ref = {
          ...sealed.ref,
          [f]:
            typeof value === "number"
              ? n
              : (() => {
                  const out = value.slice(0, bit % 3 === 0 ? value.length - 1 : value.length);
                  out[bit % out.length] = ((out[bit % out.length] as number) ^ 1) & 0xff;
                  return out;
                })(),
        } as SealedPhotoRef;
        const chunks = sealed.chunks.map((c, i) => (i === which ? c.subarray(1) : c));
        onlyProtocolErrors("openPhoto(ref)", () => openPhoto(ref, sealed.chunks));
        onlyProtocolErrors("openPhoto(chunks)", () => openPhoto(sealed.ref, chunks));
      }),
      { numRuns: 60 },
    );
    onlyProtocolErrors("openPhoto(extra chunk)", () => openPhoto(sealed.ref, [...sealed.chunks, ...sealed.chunks]));
    onlyProtocolErrors("openPhoto(missing)", () => openPhoto(sealed.ref, () => undefined));
  });
});
