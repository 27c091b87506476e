// What the relay checks of a roster it is given: well-formed, self-consistent and signed by the
// root key it names (the relay has no invite fingerprint, so it checks against that key's own
// fingerprint). Clients check the fingerprint from their invite; this only keeps garbage out.
import {
  fromBase64url,
  fromUtf8,
  type Roster,
  rosterFingerprint,
  type SignedDocumentWire,
  utf8,
  verifyRoster,
} from "@testigo/protocol";
import { z } from "zod";
import { RelayError } from "./errors.js";
import type { CampaignRecord } from "./store/store.js";

const rootKeyOnly = z.object({ rootKey: z.string() });

function invalid(): RelayError {
  return new RelayError(
    "ROSTER_INVALID",
    "the roster is malformed, inconsistent or not signed by the root key it names; re-create it with the SDK",
  );
}

/** Verifies a signed roster against the root key it names; throws ROSTER_INVALID. */
export function checkRoster(signed: SignedDocumentWire): Roster {
  const payload = fromBase64url(signed.payload);
  let rootKey: Uint8Array | undefined;
  try {
    const parsed = rootKeyOnly.safeParse(JSON.parse(fromUtf8(payload ?? new Uint8Array())));
    rootKey = parsed.success ? fromBase64url(parsed.data.rootKey) : undefined;
  } catch {
    rootKey = undefined;
  }
  if (rootKey?.length !== 32) throw invalid();
  try {
    return verifyRoster(signed, rosterFingerprint(rootKey));
  } catch {
    throw invalid();
  }
}

/** The store's record of a verified roster. */
export function campaignRecord(signed: SignedDocumentWire, roster: Roster, createdAt: number): CampaignRecord {
  return {
    campaignId: roster.campaignId,
    rootPublicKey: roster.rootKey,
    roster: utf8(JSON.stringify({ payload: signed.payload, signature: signed.signature })),
    rosterSerial: roster.serial,
    deviceIds: roster.devices.map((d) => d.id),
    deviceSigningKeys: Object.fromEntries(roster.devices.map((d) => [d.id, d.signingKey])),
    createdAt,
  };
}

/** The signed roster as stored (it was stored by campaignRecord, so it parses). */
export function storedRoster(record: CampaignRecord): SignedDocumentWire {
  return JSON.parse(fromUtf8(record.roster)) as SignedDocumentWire;
}
