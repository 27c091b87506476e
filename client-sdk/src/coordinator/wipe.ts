// Remote wipe: a `wipe` control message, signed by this device's roster key and sealed to the
// volunteer, posted to its mailbox. The counter is max(last used + 1, now in ms), so two
// coordinator devices (each with its own record) never reuse a counter the phone already saw.
import { CONTROL_KIND, CONTROL_VERSION, sealControl } from "@testigo/protocol";
import { bytesOf, type CoordinatorDevice } from "./device.js";
import { CoordinatorError } from "./errors.js";

export const WIPE_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;

export interface WipeOptions {
  /**
   * Revoke the volunteer at the relay if its phone has not acknowledged the wipe within this long
   * (checked by every fetch). Default: the wipe's lifetime (7 days). The wipe asks the phone to
   * acknowledge by the same time, capped at the wipe's lifetime.
   */
  readonly revokeAfterMs?: number;
}

export interface WipeResult {
  readonly pseudonym: string;
  readonly counter: number;
  /** ISO 8601: the phone ignores the wipe after this. */
  readonly expiresAt: string;
  readonly messageId: string;
  /** ISO 8601: without an acknowledgement by then, fetch revokes the volunteer at the relay. */
  readonly revokeAt: string;
}

export async function requestWipe(
  device: CoordinatorDevice,
  pseudonym: string,
  options: WipeOptions = {},
): Promise<WipeResult> {
  const volunteer = await device.volunteer(pseudonym);
  if (volunteer === undefined) {
    throw new CoordinatorError(
      "UNKNOWN_VOLUNTEER",
      `no enrolled volunteer ${pseudonym} on this device: run \`testigo coordinator fetch\` first, and check the id with \`testigo coordinator volunteers\``,
    );
  }
  await device.maintainEpochKeys();
  const now = device.now();
  const counter = Math.max(volunteer.lastControlCounter + 1, now);
  const expiresAt = now + WIPE_LIFETIME_MS;
  const revokeAt = now + (options.revokeAfterMs ?? WIPE_LIFETIME_MS);
  const sealed = sealControl({
    campaignId: device.config.campaignId,
    to: { pseudonym, encryptionKey: bytesOf(volunteer.encryptionKey) },
    signer: { deviceId: device.config.deviceId, signing: device.deviceKeys.signing },
    payload: {
      kind: CONTROL_KIND.wipe,
      v: CONTROL_VERSION,
      campaignId: device.config.campaignId,
      to: pseudonym,
      from: device.config.deviceId,
      counter,
      issuedAt: now,
      expiresAt,
      ackBy: Math.min(expiresAt, revokeAt),
    },
  });
  // Record the counter first: a retry after a lost answer then uses a higher one, never the same.
  const wipe = volunteer.wipe === "acknowledged" ? volunteer.wipe : "requested";
  await device.putVolunteer({ ...volunteer, lastControlCounter: counter, wipe, wipeDeadline: revokeAt });
  const messageId = await device.client.putMailbox(pseudonym, sealed.message);
  return {
    pseudonym,
    counter,
    expiresAt: new Date(expiresAt).toISOString(),
    messageId,
    revokeAt: new Date(revokeAt).toISOString(),
  };
}
