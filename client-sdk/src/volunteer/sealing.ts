// Sealing outbox envelopes to the coordinators' current epoch keys, and deciding when an envelope
// sealed earlier must be sealed again: coordinators erase epoch private keys on a schedule
// (protocol/spec/roster-invites-epochs.md), so an envelope sealed to keys that are no longer
// current may never be opened. Re-sealing keeps the message id, so the relay still de-duplicates.
import {
  DecryptionFailed,
  type InnerMessage,
  NoCurrentEpochKey,
  type Roster,
  type SelectedEpochKey,
  type SigningKeyPair,
  sealEnvelope,
  selectEpochKeys,
  toBase64url,
} from "@testigo/protocol";
import { VolunteerError } from "./errors.js";
import type { EnvelopeItem, EpochKeysRecord } from "./records.js";

/**
 * The epoch keys to seal to at `now`, verified against the roster; undefined when some roster
 * device has no key valid now (fetch again later). Documents that fail verification mean the
 * relay served forged keys: RELAY_LIED, send nothing.
 */
export function currentRecipients(
  epochKeys: EpochKeysRecord | undefined,
  roster: Roster | undefined,
  now: number,
): SelectedEpochKey[] | undefined {
  if (epochKeys === undefined || roster === undefined) return undefined;
  try {
    return selectEpochKeys(epochKeys.devices, roster, now);
  } catch (error) {
    if (error instanceof NoCurrentEpochKey) return undefined;
    if (error instanceof DecryptionFailed) {
      throw new VolunteerError(
        "RELAY_LIED",
        "the relay served coordinator keys that do not verify against the campaign's roster: do not use this relay, tell your coordinator",
      );
    }
    throw error;
  }
}

export function seal(
  campaignId: string,
  sender: SigningKeyPair,
  message: InnerMessage,
  recipients: readonly SelectedEpochKey[],
): NonNullable<EnvelopeItem["sealed"]> {
  const { envelope } = sealEnvelope({ campaignId, sender, recipients, message });
  return {
    envelope: toBase64url(envelope),
    to: recipients.map((r) => ({ deviceId: r.deviceId, epoch: r.epoch, publicKey: toBase64url(r.publicKey) })),
  };
}

/** True when the envelope was sealed to exactly the keys selected now (same devices, same keys). */
export function sealedToCurrent(item: EnvelopeItem, recipients: readonly SelectedEpochKey[]): boolean {
  if (item.sealed === undefined) return false;
  const sealedTo = new Set(item.sealed.to.map((t) => `${t.deviceId}:${t.publicKey}`));
  return (
    sealedTo.size === recipients.length &&
    recipients.every((r) => sealedTo.has(`${r.deviceId}:${toBase64url(r.publicKey)}`))
  );
}
