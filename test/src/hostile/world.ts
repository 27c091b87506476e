// The state the route fuzzer attacks: two campaigns (A and B) with coordinator devices, enrolled
// volunteers (one of them revoked), a declared photo with one chunk stored, an accepted envelope
// and a stored control message. Hostile requests must leave all of it exactly as it is.
import { randomBytes } from "node:crypto";
import {
  API,
  apiPath,
  CONTROL_MESSAGE_BYTES,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  signAuthStatement,
  toBase64url,
} from "@testigo/protocol";
import {
  bearer,
  type Campaign,
  coordinator,
  enrollVolunteer,
  type HostileRelay,
  makeEnvelope,
  octet,
  registerCampaign,
  type Volunteer,
} from "./harness.js";

export interface World {
  readonly relay: HostileRelay;
  readonly a: Campaign;
  readonly b: Campaign;
  readonly volunteer: Volunteer;
  readonly volunteerB: Volunteer;
  readonly revoked: Volunteer;
  /** Declared in A with PHOTO_CHUNKS chunks; chunk 0 stored. */
  readonly photoId: string;
  readonly chunk0: Uint8Array;
  /** Accepted in A. */
  readonly envelope: { readonly messageId: string; readonly bytes: Uint8Array };
  /** Stored in the volunteer's mailbox. */
  readonly control: Uint8Array;
  /** A session request that succeeded once (its challenge is burned). */
  readonly usedSessionBody: Record<string, string>;
}

export const PHOTO_CHUNKS = 3;

async function expect(res: { statusCode: number; body: string }, status: number, what: string): Promise<void> {
  if (res.statusCode !== status) throw new Error(`${what}: ${res.statusCode} ${res.body}`);
}

export async function buildWorld(relay: HostileRelay): Promise<World> {
  const a = await registerCampaign(relay, 2);
  const b = await registerCampaign(relay, 1);
  const volunteer = await enrollVolunteer(relay, a);
  const volunteerB = await enrollVolunteer(relay, b);
  const revoked = await enrollVolunteer(relay, a);
  const coord = coordinator(a);
  await expect(
    await relay.app.inject({
      method: "POST",
      url: apiPath(API.revokeVolunteer, { campaignId: a.campaignId, pseudonym: revoked.pseudonym }),
      headers: bearer(coord.token),
    }),
    200,
    "revoke",
  );
  const photoId = toBase64url(randomBytes(16));
  await expect(
    await relay.app.inject({
      method: "PUT",
      url: apiPath(API.createPhoto, { campaignId: a.campaignId, photoId }),
      headers: bearer(volunteer.token),
      payload: { chunkCount: PHOTO_CHUNKS },
    }),
    201,
    "create photo",
  );
  const chunk0 = randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES);
  await expect(
    await relay.app.inject({
      method: "PUT",
      url: apiPath(API.putChunk, { campaignId: a.campaignId, photoId, index: 0 }),
      headers: octet(volunteer.token),
      payload: Buffer.from(chunk0),
    }),
    200,
    "chunk 0",
  );
  const envelope = makeEnvelope(a.campaignId);
  await expect(
    await relay.app.inject({
      method: "POST",
      url: apiPath(API.submitEnvelope, { campaignId: a.campaignId }),
      headers: octet(volunteer.token),
      payload: Buffer.from(envelope.bytes),
    }),
    202,
    "envelope",
  );
  const control = randomBytes(CONTROL_MESSAGE_BYTES);
  await expect(
    await relay.app.inject({
      method: "POST",
      url: apiPath(API.putMailbox, { campaignId: a.campaignId, pseudonym: volunteer.pseudonym }),
      headers: octet(coord.token),
      payload: Buffer.from(control),
    }),
    201,
    "mailbox",
  );
  // A session request that worked, kept to be replayed.
  const ch = await relay.app.inject({ method: "POST", url: API.challenge.path });
  const statement = {
    campaignId: a.campaignId,
    role: "coordinator" as const,
    principal: coord.id,
    challenge: (ch.json() as { challenge: string }).challenge,
  };
  const usedSessionBody = { ...statement, signature: signAuthStatement(statement, coord.keys.signing.privateKey) };
  await expect(
    await relay.app.inject({ method: "POST", url: API.session.path, payload: usedSessionBody }),
    201,
    "session",
  );
  return { relay, a, b, volunteer, volunteerB, revoked, photoId, chunk0, envelope, control, usedSessionBody };
}
