// Signed documents: "sign the bytes, not the object".
//
// The signer serialises a value to UTF-8 JSON once and signs those exact bytes; the wire form
// carries the bytes themselves (base64url) beside the signature:
//
//   { "payload": base64url(jsonBytes), "signature": base64url(Ed25519(label || 0x00 || jsonBytes)) }
//
// A verifier checks the signature over the payload bytes BEFORE parsing them, then parses and
// validates them with a strict zod schema. Nothing is ever re-serialised, so no canonical JSON
// is needed and a verifier never interprets bytes that nobody signed.
import { z } from "zod";
import { fromBase64url, fromUtf8, toBase64url, utf8 } from "./bytes.js";
import type { Domain } from "./domain.js";
import { DecryptionFailed, Malformed, TooLarge } from "./errors.js";
import { signWithDomain, verifyWithDomain } from "./keys.js";
import { signature } from "./schemas/common.js";

/** Largest payload a signed document may carry (a 64-device roster is about 16 KiB). */
export const MAX_SIGNED_PAYLOAD_BYTES = 64 * 1024;

export const signedDocument = z.strictObject({
  payload: z
    .string()
    .min(1)
    .max(Math.ceil((MAX_SIGNED_PAYLOAD_BYTES * 4) / 3))
    .regex(/^[A-Za-z0-9_-]+$/, "must be base64url (no padding)"),
  signature,
});

export type SignedDocument = z.infer<typeof signedDocument>;

/**
 * Validates `value` with `schema` (a signer never signs what a verifier would refuse), encodes
 * it as JSON and signs the bytes under `label`.
 */
export function signDocument<S extends z.ZodType>(
  label: Domain,
  value: z.input<S>,
  schema: S,
  privateKey: Uint8Array,
): SignedDocument {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`;
    throw new Malformed(`refusing to sign an invalid document${where}: ${issue?.message ?? "schema mismatch"}`);
  }
  const parsed = result.data;
  const bytes = utf8(JSON.stringify(parsed));
  if (bytes.length > MAX_SIGNED_PAYLOAD_BYTES) {
    throw new TooLarge(`signed document of ${bytes.length} bytes exceeds ${MAX_SIGNED_PAYLOAD_BYTES} bytes`);
  }
  return { payload: toBase64url(bytes), signature: toBase64url(signWithDomain(label, bytes, privateKey)) };
}

/**
 * Signed documents that verified, by their exact wire strings, label and key. A device reads the
 * same roster and epoch-key documents at every sync and the relay checks the same ones on every
 * request; Ed25519 verification is deterministic, so a document seen verified once verifies
 * again, and only the verification is skipped (decoding, parsing and the schema still run).
 * Bounded: the oldest entry goes first.
 */
const verifiedDocuments = new Set<string>();
const MAX_VERIFIED_DOCUMENTS = 256;

function verifyDocumentOnce(label: Domain, wire: DecodedWire, publicKey: Uint8Array): boolean {
  const key = `${label}\u0000${toBase64url(publicKey)}\u0000${wire.text.signature}\u0000${wire.text.payload}`;
  if (verifiedDocuments.has(key)) return true;
  if (!verifyWithDomain(label, wire.payload, wire.signature, publicKey)) return false;
  if (verifiedDocuments.size >= MAX_VERIFIED_DOCUMENTS) {
    const oldest = verifiedDocuments.values().next().value;
    if (oldest !== undefined) verifiedDocuments.delete(oldest);
  }
  verifiedDocuments.add(key);
  return true;
}

interface DecodedWire {
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
  /** The base64url strings they were decoded from (canonical: fromBase64url refuses others). */
  readonly text: SignedDocument;
}

function decodeWire(doc: unknown): DecodedWire | undefined {
  const wire = signedDocument.safeParse(doc);
  if (!wire.success) return undefined;
  const payload = fromBase64url(wire.data.payload);
  const signature = fromBase64url(wire.data.signature);
  if (payload === undefined || signature === undefined || payload.length > MAX_SIGNED_PAYLOAD_BYTES) return undefined;
  return { payload, signature, text: wire.data };
}

/**
 * The payload bytes of a well-formed wire document, NOT verified. Only for reading which key
 * should verify it (the roster's root key); the result must be checked before it is trusted.
 */
export function unverifiedPayloadBytes(doc: unknown): Uint8Array | undefined {
  return decodeWire(doc)?.payload;
}

/**
 * Verifies `doc` (any value received from the network) under `label` and `publicKey`, then parses
 * its payload with `schema`. Any failure, whatever it is, throws the one DecryptionFailed.
 */
export function openSignedDocument<S extends z.ZodType>(
  label: Domain,
  doc: unknown,
  schema: S,
  publicKey: Uint8Array,
): z.output<S> {
  const wire = decodeWire(doc);
  if (wire === undefined || !verifyDocumentOnce(label, wire, publicKey)) {
    throw new DecryptionFailed();
  }
  const bytes = wire.payload;
  let json: unknown;
  try {
    json = JSON.parse(fromUtf8(bytes));
  } catch {
    throw new DecryptionFailed();
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new DecryptionFailed();
  return result.data;
}
