// Minting invites. Each secret comes from the campaign's shared invite key (invite-secret.ts), so
// every coordinator device can later check the volunteer's `enrolled` report. The relay gets only
// the stored hash and an expiry.
import {
  createInvite,
  encodeInvite,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  MAX_INVITES_PER_REQUEST,
} from "@testigo/protocol";
import { bytesOf, type CoordinatorDevice } from "./device.js";
import { RECORD } from "./state.js";

export const DEFAULT_INVITE_DAYS = 14;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface MintedInvite {
  readonly code: string;
  readonly label?: string;
  readonly expiresAt: number;
}

export interface MintOptions {
  readonly count: number;
  readonly label?: string;
  readonly expiresDays?: number;
}

export async function mintInvites(device: CoordinatorDevice, options: MintOptions): Promise<MintedInvite[]> {
  await device.maintainEpochKeys();
  const now = device.now();
  const expiresAt = now + (options.expiresDays ?? DEFAULT_INVITE_DAYS) * DAY_MS;
  const fingerprint = bytesOf(device.config.rootFingerprint);
  const minted: { code: string; storedHash: string }[] = [];
  for (let i = 0; i < options.count; i++) {
    const invite = createInvite(device.config.relayUrl, fingerprint, device.inviteKey);
    const storedHash = inviteStoredHashBase64url(inviteRedeemToken(invite.secret));
    minted.push({ code: encodeInvite(invite), storedHash });
  }
  // Remember them before the relay accepts them: a label is then known whichever device
  // receives the volunteer's enrollment report (and nothing is lost if the upload fails).
  for (const m of minted) {
    await device.store.putJson(RECORD.invite(m.storedHash), {
      storedHash: m.storedHash,
      ...(options.label === undefined ? {} : { label: options.label }),
      createdAt: now,
      expiresAt,
    });
  }
  for (let start = 0; start < minted.length; start += MAX_INVITES_PER_REQUEST) {
    const part = minted.slice(start, start + MAX_INVITES_PER_REQUEST);
    await device.client.addInvites(part.map((m) => ({ storedHash: m.storedHash, expiresAt })));
  }
  return minted.map((m) => ({
    code: m.code,
    expiresAt,
    ...(options.label === undefined ? {} : { label: options.label }),
  }));
}
