// Domain-separation labels. Every hash, signature and key derivation in the protocol starts
// its input with exactly one of these ASCII strings followed by a 0x00 byte, so a value made
// for one purpose can never be accepted for another. SPEC.md lists them; never reuse one.
import { concatBytes, utf8 } from "./bytes.js";

export const DOMAIN = {
  fingerprint: "testigo/v1/fingerprint",
  campaignId: "testigo/v1/campaign-id",
  pseudonym: "testigo/v1/pseudonym",
  rosterSignature: "testigo/v1/roster",
  epochKeySignature: "testigo/v1/epoch-key",
  reportSignature: "testigo/v1/report",
  keyWrap: "testigo/v1/key-wrap",
  keyId: "testigo/v1/key-id",
  photoChunk: "testigo/v1/photo-chunk",
  controlSignature: "testigo/v1/control",
  controlWrap: "testigo/v1/control-wrap",
  authSignature: "testigo/v1/auth",
  inviteRedeem: "testigo/v1/invite-redeem",
  inviteStored: "testigo/v1/invite-stored",
  inviteProof: "testigo/v1/invite-proof",
  inviteSecret: "testigo/v1/invite-secret",
  sessionToken: "testigo/v1/session-token",
  enrollSignature: "testigo/v1/enroll",
  enrollDuressSignature: "testigo/v1/enroll-duress",
  duressProof: "testigo/v1/duress-proof",
  mailboxMessageId: "testigo/v1/mailbox-message-id",
  deviceBundle: "testigo/v1/device-bundle",
} as const;

export type Domain = (typeof DOMAIN)[keyof typeof DOMAIN];

/** `label || 0x00 || part1 || part2 ...` — the prefix every signed or hashed message carries. */
export function separated(label: Domain, ...parts: readonly Uint8Array[]): Uint8Array {
  return concatBytes(utf8(label), new Uint8Array([0]), ...parts);
}
