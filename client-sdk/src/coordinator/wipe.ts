// Remote wipe: a `wipe` control message, signed by this device's roster key and sealed to the
// volunteer, posted to its mailbox. The counter is max(last used + 1, now in ms), so two
// coordinator devices (each with its own record) never reuse a counter the phone already saw.
import { CONTROL_KIND, CONTROL_VERSION, sealControl } from "@testigo/protocol";
import { bytesOf, type CoordinatorDevice } from "./device.js";
import { CoordinatorError } from "./errors.js";

export const WIPE_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;

export interface WipeResult {
  readonly pseudonym: string;
  readonly counter: number;
  /** ISO 8601: the phone ignores the wipe after this. */
  readonly expiresAt: string;
  readonly messageId: string;
}

export async function requestWipe(device: CoordinatorDevice, pseudonym: string): Promise<WipeResult> {
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
      ackBy: expiresAt,
    },
  });
  // Record the counter first: a retry after a lost answer then uses a higher one, never the same.
  await device.putVolunteer({ ...volunteer, lastControlCounter: counter, wipe: "requested" });
  const messageId = await device.client.putMailbox(pseudonym, sealed.message);
  return { pseudonym, counter, expiresAt: new Date(expiresAt).toISOString(), messageId };
}
