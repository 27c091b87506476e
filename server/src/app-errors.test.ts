// Bad input of every route gets a 4xx with a stable code and changes nothing; auth failures;
// unknown routes; internal errors; a store outage; rate limits; and what the logs never contain.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  API,
  apiPath,
  CONTROL_MESSAGE_BYTES,
  createEpochKey,
  createRoster,
  generateSigningKeyPair,
  initSodium,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  publicKeysOf,
  randomBytes,
  SESSION_TTL_MS,
  signAuthStatement,
  toBase64url,
} from "@testigo/protocol";
import { MAX_ENVELOPE_BYTES } from "./routes/envelopes.js";
import {
  addInvite,
  bearer,
  type Campaign,
  challenge,
  coordinatorToken,
  enrollPayload,
  enrollVolunteer,
  makeCampaign,
  makeEnvelope,
  OPERATOR_TOKEN,
  octet,
  type Relay,
  registerCampaign,
  startRelay,
  type Volunteer,
} from "./test-fixture.js";

let relay: Relay;
let campaign: Campaign;
let coord: string;
let volunteer: Volunteer;
let photoId: string;

before(async () => {
  await initSodium();
  relay = await startRelay();
  campaign = await registerCampaign(relay, makeCampaign(2));
  coord = await coordinatorToken(relay, campaign, 0);
  volunteer = await enrollVolunteer(relay, campaign, coord);
  photoId = toBase64url(randomBytes(16));
  await relay.app.inject({
    method: "PUT",
    url: apiPath(API.createPhoto, { campaignId: campaign.campaignId, photoId }),
    headers: bearer(volunteer.token),
    payload: { chunkCount: 3 },
  });
  await relay.app.inject({
    method: "POST",
    url: apiPath(API.submitEnvelope, { campaignId: campaign.campaignId }),
    headers: octet(volunteer.token),
    payload: Buffer.from(makeEnvelope(campaign.campaignId).bytes),
  });
});

after(async () => {
  await relay.close();
});

/** Everything a bad request could have changed, read straight from the store. */
async function snapshot() {
  const id = campaign.campaignId;
  return {
    campaign: await relay.store.getCampaign(id),
    epochKeys: await relay.store.getEpochKeys(id),
    volunteers: await relay.store.listVolunteers(id),
    inbox: await relay.store.readInbox(id, "laptop-1", 1000),
    inbox2: await relay.store.readInbox(id, "laptop-2", 1000),
    mailbox: await relay.store.readMailbox(id, volunteer.pseudonym, 100, relay.now),
    chunks: await relay.store.listPhotoChunks(id, photoId),
  };
}

interface Case {
  readonly name: string;
  readonly method: "GET" | "POST" | "PUT";
  readonly url: () => string;
  readonly headers?: () => Record<string, string>;
  readonly payload?: () => unknown;
  readonly status: number;
  readonly code: string;
}

const cid = () => campaign.campaignId;
const json = (token: () => string) => () => ({ ...bearer(token()), "content-type": "application/json" });
const coordJson = json(() => coord);
const volJson = json(() => volunteer.token);
const bytes = (n: number) => () => Buffer.from(randomBytes(n));

const badCases: Case[] = [
  // campaigns
  {
    name: "register without token",
    method: "POST",
    url: () => API.registerCampaign.path,
    payload: () => ({ roster: makeCampaign().rosterDoc }),
    status: 401,
    code: "AUTH_REQUIRED",
  },
  {
    name: "register with a wrong token",
    method: "POST",
    url: () => API.registerCampaign.path,
    headers: () => bearer("x".repeat(43)),
    payload: () => ({ roster: makeCampaign().rosterDoc }),
    status: 401,
    code: "AUTH_REQUIRED",
  },
  {
    name: "register with no body",
    method: "POST",
    url: () => API.registerCampaign.path,
    headers: () => bearer(OPERATOR_TOKEN),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "register with invalid JSON",
    method: "POST",
    url: () => API.registerCampaign.path,
    headers: () => ({ ...bearer(OPERATOR_TOKEN), "content-type": "application/json" }),
    payload: () => "{not json",
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "register with a proto-poisoning body",
    method: "POST",
    url: () => API.registerCampaign.path,
    headers: () => ({ ...bearer(OPERATOR_TOKEN), "content-type": "application/json" }),
    payload: () => '{"__proto__":{"x":1}}',
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "register with a forged roster signature",
    method: "POST",
    url: () => API.registerCampaign.path,
    headers: () => bearer(OPERATOR_TOKEN),
    payload: () => ({ roster: { ...makeCampaign().rosterDoc, signature: toBase64url(randomBytes(64)) } }),
    status: 400,
    code: "ROSTER_INVALID",
  },
  {
    name: "register with a roster that is not JSON",
    method: "POST",
    url: () => API.registerCampaign.path,
    headers: () => bearer(OPERATOR_TOKEN),
    payload: () => ({ roster: { payload: toBase64url(randomBytes(100)), signature: toBase64url(randomBytes(64)) } }),
    status: 400,
    code: "ROSTER_INVALID",
  },
  {
    name: "register with an oversized body",
    method: "POST",
    url: () => API.registerCampaign.path,
    headers: () => ({ ...bearer(OPERATOR_TOKEN), "content-type": "application/json" }),
    payload: () => JSON.stringify({ roster: "x".repeat(300 * 1024) }),
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    name: "register with the wrong media type",
    method: "POST",
    url: () => API.registerCampaign.path,
    headers: () => ({ ...bearer(OPERATOR_TOKEN), "content-type": "application/xml" }),
    payload: () => "<roster/>",
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "roster of a malformed campaign id",
    method: "GET",
    url: () => "/v1/campaigns/not-an-id/roster",
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "roster of an unknown campaign",
    method: "GET",
    url: () => apiPath(API.getRoster, { campaignId: makeCampaign(1).campaignId }),
    status: 404,
    code: "NOT_FOUND",
  },
  {
    name: "roster update of another root",
    method: "PUT",
    url: () => apiPath(API.putRoster, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({ roster: makeCampaign(1, 5).rosterDoc }),
    status: 400,
    code: "ROSTER_INVALID",
  },
  {
    name: "roster update with extra fields",
    method: "PUT",
    url: () => apiPath(API.putRoster, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({ roster: campaign.rosterDoc, extra: 1 }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "roster update with the same serial",
    method: "PUT",
    url: () => apiPath(API.putRoster, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({ roster: campaign.rosterDoc }),
    status: 409,
    code: "ROSTER_STALE",
  },
  // epoch keys
  {
    name: "epoch keys: empty list",
    method: "PUT",
    url: () => apiPath(API.putEpochKeys, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({ documents: [] }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "epoch keys: too many",
    method: "PUT",
    url: () => apiPath(API.putEpochKeys, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({
      documents: Array.from({ length: 17 }, () => ({ payload: "AA", signature: toBase64url(randomBytes(64)) })),
    }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "epoch keys signed by another key",
    method: "PUT",
    url: () => apiPath(API.putEpochKeys, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({
      documents: [
        createEpochKey({
          campaignId: cid(),
          deviceId: "laptop-1",
          epoch: 1,
          deviceSigningKey: generateSigningKeyPair().privateKey,
        }).signed,
      ],
    }),
    status: 400,
    code: "EPOCH_KEY_INVALID",
  },
  {
    name: "epoch keys of another device",
    method: "PUT",
    url: () => apiPath(API.putEpochKeys, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({
      documents: [
        createEpochKey({
          campaignId: cid(),
          deviceId: "laptop-2",
          epoch: 1,
          deviceSigningKey: campaign.devices[0]?.keys.signing.privateKey ?? new Uint8Array(),
        }).signed,
      ],
    }),
    status: 400,
    code: "EPOCH_KEY_INVALID",
  },
  {
    name: "epoch keys as a volunteer",
    method: "PUT",
    url: () => apiPath(API.putEpochKeys, { campaignId: cid() }),
    headers: volJson,
    payload: () => ({ documents: [] }),
    status: 403,
    code: "FORBIDDEN",
  },
  // invites and enrollment
  {
    name: "invites: expired",
    method: "POST",
    url: () => apiPath(API.addInvites, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({ invites: [{ storedHash: toBase64url(randomBytes(32)), expiresAt: relay.now - 1 }] }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "invites: too many",
    method: "POST",
    url: () => apiPath(API.addInvites, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({
      invites: Array.from({ length: 1001 }, () => ({
        storedHash: toBase64url(randomBytes(32)),
        expiresAt: relay.now + 1000,
      })),
    }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "invites: a short hash",
    method: "POST",
    url: () => apiPath(API.addInvites, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({ invites: [{ storedHash: toBase64url(randomBytes(31)), expiresAt: relay.now + 1000 }] }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "invites: personal data field",
    method: "POST",
    url: () => apiPath(API.addInvites, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({
      invites: [{ storedHash: toBase64url(randomBytes(32)), expiresAt: relay.now + 1000, phone: "+58 412" }],
    }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "enroll with an unknown invite",
    method: "POST",
    url: () => apiPath(API.enroll, { campaignId: cid() }),
    payload: () =>
      enrollPayload(randomBytes(32), {
        signing: generateSigningKeyPair(),
        encryption: { publicKey: randomBytes(32), privateKey: randomBytes(32) },
      }),
    status: 404,
    code: "INVITE_INVALID",
  },
  {
    name: "enroll with a bad proof of possession",
    method: "POST",
    url: () => apiPath(API.enroll, { campaignId: cid() }),
    payload: () => ({
      ...enrollPayload(randomBytes(32), {
        signing: generateSigningKeyPair(),
        encryption: { publicKey: randomBytes(32), privateKey: randomBytes(32) },
      }),
      signature: toBase64url(randomBytes(64)),
    }),
    status: 401,
    code: "AUTH_FAILED",
  },
  {
    name: "enroll with a name",
    method: "POST",
    url: () => apiPath(API.enroll, { campaignId: cid() }),
    payload: () => ({ redeemToken: toBase64url(randomBytes(32)), name: "Ana" }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  // envelopes
  {
    name: "envelope as JSON",
    method: "POST",
    url: () => apiPath(API.submitEnvelope, { campaignId: cid() }),
    headers: volJson,
    payload: () => ({ envelope: "x" }),
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "envelope truncated",
    method: "POST",
    url: () => apiPath(API.submitEnvelope, { campaignId: cid() }),
    headers: () => octet(volunteer.token),
    payload: () => Buffer.from(makeEnvelope(cid()).bytes.subarray(0, 500)),
    status: 400,
    code: "ENVELOPE_INVALID",
  },
  {
    name: "envelope empty",
    method: "POST",
    url: () => apiPath(API.submitEnvelope, { campaignId: cid() }),
    headers: () => octet(volunteer.token),
    payload: () => Buffer.alloc(0),
    status: 400,
    code: "ENVELOPE_INVALID",
  },
  {
    name: "envelope of another campaign",
    method: "POST",
    url: () => apiPath(API.submitEnvelope, { campaignId: cid() }),
    headers: () => octet(volunteer.token),
    payload: () => Buffer.from(makeEnvelope(makeCampaign(1).campaignId).bytes),
    status: 400,
    code: "ENVELOPE_INVALID",
  },
  {
    name: "envelope with a wrong version",
    method: "POST",
    url: () => apiPath(API.submitEnvelope, { campaignId: cid() }),
    headers: () => octet(volunteer.token),
    payload: () => {
      const e = makeEnvelope(cid()).bytes;
      e[0] = 9;
      return Buffer.from(e);
    },
    status: 400,
    code: "ENVELOPE_INVALID",
  },
  {
    name: "envelope oversized",
    method: "POST",
    url: () => apiPath(API.submitEnvelope, { campaignId: cid() }),
    headers: () => octet(volunteer.token),
    payload: bytes(MAX_ENVELOPE_BYTES + 1),
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    name: "envelope from a coordinator",
    method: "POST",
    url: () => apiPath(API.submitEnvelope, { campaignId: cid() }),
    headers: () => octet(coord),
    payload: () => Buffer.from(makeEnvelope(cid()).bytes),
    status: 403,
    code: "FORBIDDEN",
  },
  // photos
  {
    name: "photo with zero chunks",
    method: "PUT",
    url: () => apiPath(API.createPhoto, { campaignId: cid(), photoId }),
    headers: volJson,
    payload: () => ({ chunkCount: 0 }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "photo with too many chunks",
    method: "PUT",
    url: () => apiPath(API.createPhoto, { campaignId: cid(), photoId }),
    headers: volJson,
    payload: () => ({ chunkCount: 513 }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "photo re-declared with another count",
    method: "PUT",
    url: () => apiPath(API.createPhoto, { campaignId: cid(), photoId }),
    headers: volJson,
    payload: () => ({ chunkCount: 4 }),
    status: 409,
    code: "CONFLICT",
  },
  {
    name: "photo with a bad id",
    method: "PUT",
    url: () => apiPath(API.createPhoto, { campaignId: cid(), photoId: "short" }),
    headers: volJson,
    payload: () => ({ chunkCount: 1 }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "chunk of the wrong size",
    method: "PUT",
    url: () => apiPath(API.putChunk, { campaignId: cid(), photoId, index: 0 }),
    headers: () => octet(volunteer.token),
    payload: bytes(1000),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "chunk oversized",
    method: "PUT",
    url: () => apiPath(API.putChunk, { campaignId: cid(), photoId, index: 0 }),
    headers: () => octet(volunteer.token),
    payload: bytes(PHOTO_CHUNK_CIPHERTEXT_BYTES + 1),
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    name: "chunk index past the count",
    method: "PUT",
    url: () => apiPath(API.putChunk, { campaignId: cid(), photoId, index: 7 }),
    headers: () => octet(volunteer.token),
    payload: bytes(PHOTO_CHUNK_CIPHERTEXT_BYTES),
    status: 409,
    code: "CONFLICT",
  },
  {
    name: "chunk index out of range",
    method: "PUT",
    url: () => apiPath(API.putChunk, { campaignId: cid(), photoId, index: 512 }),
    headers: () => octet(volunteer.token),
    payload: bytes(PHOTO_CHUNK_CIPHERTEXT_BYTES),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "chunk index not a number",
    method: "PUT",
    url: () => apiPath(API.putChunk, { campaignId: cid(), photoId, index: "01" }),
    headers: () => octet(volunteer.token),
    payload: bytes(PHOTO_CHUNK_CIPHERTEXT_BYTES),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "chunk of an unknown photo",
    method: "PUT",
    url: () => apiPath(API.putChunk, { campaignId: cid(), photoId: toBase64url(randomBytes(16)), index: 0 }),
    headers: () => octet(volunteer.token),
    payload: bytes(PHOTO_CHUNK_CIPHERTEXT_BYTES),
    status: 404,
    code: "NOT_FOUND",
  },
  {
    name: "chunks of an unknown photo",
    method: "GET",
    url: () => apiPath(API.listChunks, { campaignId: cid(), photoId: toBase64url(randomBytes(16)) }),
    headers: () => bearer(volunteer.token),
    status: 404,
    code: "NOT_FOUND",
  },
  {
    name: "chunk download by a volunteer",
    method: "GET",
    url: () => apiPath(API.getChunk, { campaignId: cid(), photoId, index: 0 }),
    headers: () => bearer(volunteer.token),
    status: 403,
    code: "FORBIDDEN",
  },
  // inbox
  {
    name: "inbox limit zero",
    method: "GET",
    url: () => `${apiPath(API.readInbox, { campaignId: cid() })}?limit=0`,
    headers: () => bearer(coord),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "inbox limit huge",
    method: "GET",
    url: () => `${apiPath(API.readInbox, { campaignId: cid() })}?limit=100000`,
    headers: () => bearer(coord),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "inbox limit not a number",
    method: "GET",
    url: () => `${apiPath(API.readInbox, { campaignId: cid() })}?limit=abc`,
    headers: () => bearer(coord),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "inbox unknown query",
    method: "GET",
    url: () => `${apiPath(API.readInbox, { campaignId: cid() })}?volunteer=v`,
    headers: () => bearer(coord),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "inbox ack empty",
    method: "POST",
    url: () => apiPath(API.ackInbox, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({ cursors: [] }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "inbox ack garbage",
    method: "POST",
    url: () => apiPath(API.ackInbox, { campaignId: cid() }),
    headers: coordJson,
    payload: () => ({ cursors: ["; DROP TABLE"] }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "inbox read by a volunteer",
    method: "GET",
    url: () => apiPath(API.readInbox, { campaignId: cid() }),
    headers: () => bearer(volunteer.token),
    status: 403,
    code: "FORBIDDEN",
  },
  // mailboxes
  {
    name: "control message too short",
    method: "POST",
    url: () => apiPath(API.putMailbox, { campaignId: cid(), pseudonym: volunteer.pseudonym }),
    headers: () => octet(coord),
    payload: bytes(CONTROL_MESSAGE_BYTES - 1),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "control message too long",
    method: "POST",
    url: () => apiPath(API.putMailbox, { campaignId: cid(), pseudonym: volunteer.pseudonym }),
    headers: () => octet(coord),
    payload: bytes(CONTROL_MESSAGE_BYTES + 1),
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
  },
  {
    name: "control message to a bad pseudonym",
    method: "POST",
    url: () => apiPath(API.putMailbox, { campaignId: cid(), pseudonym: "v-lowercase" }),
    headers: () => octet(coord),
    payload: bytes(CONTROL_MESSAGE_BYTES),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "control message to an unknown volunteer",
    method: "POST",
    url: () => apiPath(API.putMailbox, { campaignId: cid(), pseudonym: "v-0000000000000000" }),
    headers: () => octet(coord),
    payload: bytes(CONTROL_MESSAGE_BYTES),
    status: 404,
    code: "NOT_FOUND",
  },
  {
    name: "control message from a volunteer",
    method: "POST",
    url: () => apiPath(API.putMailbox, { campaignId: cid(), pseudonym: volunteer.pseudonym }),
    headers: () => octet(volunteer.token),
    payload: bytes(CONTROL_MESSAGE_BYTES),
    status: 403,
    code: "FORBIDDEN",
  },
  {
    name: "mailbox ack too many",
    method: "POST",
    url: () => apiPath(API.ackMailbox, { campaignId: cid() }),
    headers: volJson,
    payload: () => ({ messageIds: Array.from({ length: 5 }, () => toBase64url(randomBytes(16))) }),
    status: 400,
    code: "MALFORMED_REQUEST",
  },
  {
    name: "mailbox read by a coordinator",
    method: "GET",
    url: () => apiPath(API.readMailbox, { campaignId: cid() }),
    headers: () => bearer(coord),
    status: 403,
    code: "FORBIDDEN",
  },
  // volunteers
  {
    name: "revoke an unknown volunteer",
    method: "POST",
    url: () => apiPath(API.revokeVolunteer, { campaignId: cid(), pseudonym: "v-0000000000000000" }),
    headers: () => bearer(coord),
    status: 404,
    code: "NOT_FOUND",
  },
  {
    name: "revoke by a volunteer",
    method: "POST",
    url: () => apiPath(API.revokeVolunteer, { campaignId: cid(), pseudonym: volunteer.pseudonym }),
    headers: () => bearer(volunteer.token),
    status: 403,
    code: "FORBIDDEN",
  },
  {
    name: "list volunteers without a session",
    method: "GET",
    url: () => apiPath(API.listVolunteers, { campaignId: cid() }),
    status: 401,
    code: "AUTH_REQUIRED",
  },
  // routing
  { name: "an unknown route", method: "GET", url: () => "/v1/nothing-here", status: 404, code: "NOT_FOUND" },
  { name: "a wrong method", method: "PUT", url: () => API.challenge.path, status: 404, code: "NOT_FOUND" },
  {
    name: "a malformed URL",
    method: "GET",
    url: () => "/v1/campaigns/%E0%A4%A/roster",
    status: 400,
    code: "MALFORMED_REQUEST",
  },
];

describe("bad input", () => {
  it("gets a 4xx with a stable code for every route, and changes nothing", async () => {
    const before = await snapshot();
    for (const c of badCases) {
      const res = await relay.app.inject({
        method: c.method,
        url: c.url(),
        ...(c.headers === undefined ? {} : { headers: c.headers() }),
        ...(c.payload === undefined ? {} : { payload: c.payload() as string }),
      });
      assert.equal(res.statusCode, c.status, `${c.name}: ${res.body}`);
      assert.equal(res.json().error.code, c.code, c.name);
      assert.equal(typeof res.json().error.message, "string", c.name);
    }
    assert.deepEqual(await snapshot(), before);
  });
});

describe("authentication failures", () => {
  const inboxUrl = () => apiPath(API.readInbox, { campaignId: cid() });

  it("refuses a missing or garbage token", async () => {
    const none = await relay.app.inject({ method: "GET", url: inboxUrl() });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, "AUTH_REQUIRED");
    for (const header of ["Bearer nope", "Basic abc", `Bearer ${toBase64url(randomBytes(32))}`]) {
      const res = await relay.app.inject({ method: "GET", url: inboxUrl(), headers: { authorization: header } });
      assert.equal(res.statusCode, 401, header);
    }
  });

  it("refuses a bad signature, an unknown device and a replayed challenge", async () => {
    const device = campaign.devices[0];
    assert.ok(device);
    const statement = {
      campaignId: cid(),
      role: "coordinator" as const,
      principal: device.id,
      challenge: await challenge(relay),
    };
    const forged = await relay.app.inject({
      method: "POST",
      url: API.session.path,
      payload: { ...statement, signature: signAuthStatement(statement, generateSigningKeyPair().privateKey) },
    });
    assert.equal(forged.statusCode, 401);
    assert.equal(forged.json().error.code, "AUTH_FAILED");
    // The forged attempt burned that challenge: even the right signature is refused now.
    const replay = await relay.app.inject({
      method: "POST",
      url: API.session.path,
      payload: { ...statement, signature: signAuthStatement(statement, device.keys.signing.privateKey) },
    });
    assert.equal(replay.statusCode, 401);
    const fresh = { ...statement, challenge: await challenge(relay) };
    const good = { ...fresh, signature: signAuthStatement(fresh, device.keys.signing.privateKey) };
    assert.equal((await relay.app.inject({ method: "POST", url: API.session.path, payload: good })).statusCode, 201);
    const again = await relay.app.inject({ method: "POST", url: API.session.path, payload: good });
    assert.equal(again.statusCode, 401, "a challenge works once");
    const unknown = { ...statement, principal: "laptop-9", challenge: await challenge(relay) };
    const res = await relay.app.inject({
      method: "POST",
      url: API.session.path,
      payload: { ...unknown, signature: signAuthStatement(unknown, device.keys.signing.privateKey) },
    });
    assert.equal(res.statusCode, 401);
  });

  it("refuses an expired challenge and an expired session", async () => {
    const device = campaign.devices[1];
    assert.ok(device);
    const token = await coordinatorToken(relay, campaign, 1);
    const statement = {
      campaignId: cid(),
      role: "coordinator" as const,
      principal: device.id,
      challenge: await challenge(relay),
    };
    const start = relay.now;
    try {
      relay.now = start + SESSION_TTL_MS + 1;
      const late = await relay.app.inject({
        method: "POST",
        url: API.session.path,
        payload: { ...statement, signature: signAuthStatement(statement, device.keys.signing.privateKey) },
      });
      assert.equal(late.statusCode, 401);
      const expired = await relay.app.inject({ method: "GET", url: inboxUrl(), headers: bearer(token) });
      assert.equal(expired.statusCode, 401);
      assert.equal(expired.json().error.code, "AUTH_REQUIRED");
    } finally {
      relay.now = start;
    }
  });

  it("refuses a session of another campaign", async () => {
    const other = await registerCampaign(relay, makeCampaign(1));
    const token = await coordinatorToken(relay, other, 0);
    const res = await relay.app.inject({ method: "GET", url: inboxUrl(), headers: bearer(token) });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error.code, "FORBIDDEN");
  });

  it("ends the sessions of a device dropped from the roster", async () => {
    const token = await coordinatorToken(relay, campaign, 1);
    const first = campaign.devices[0];
    assert.ok(first);
    const smaller = createRoster({
      root: campaign.root,
      serial: 2,
      issuedAt: relay.now,
      devices: [{ id: first.id, ...publicKeysOf(first.keys) }],
    });
    const put = await relay.app.inject({
      method: "PUT",
      url: apiPath(API.putRoster, { campaignId: cid() }),
      headers: bearer(coord),
      payload: { roster: smaller },
    });
    assert.equal(put.statusCode, 200, put.body);
    const res = await relay.app.inject({ method: "GET", url: inboxUrl(), headers: bearer(token) });
    assert.equal(res.statusCode, 403);
  });

  it("refuses a revoked volunteer's new sessions with 403 REVOKED, and burns an invite once", async () => {
    const redeemToken = await addInvite(relay, campaign, coord);
    const keys = {
      signing: generateSigningKeyPair(),
      encryption: { publicKey: randomBytes(32), privateKey: randomBytes(32) },
    };
    const url = apiPath(API.enroll, { campaignId: cid() });
    const enrolled = await relay.app.inject({ method: "POST", url, payload: enrollPayload(redeemToken, keys) });
    assert.equal(enrolled.statusCode, 201);
    const keys2 = {
      signing: generateSigningKeyPair(),
      encryption: { publicKey: randomBytes(32), privateKey: randomBytes(32) },
    };
    const reused = await relay.app.inject({ method: "POST", url, payload: enrollPayload(redeemToken, keys2) });
    assert.equal(reused.statusCode, 404);
    assert.equal(reused.json().error.code, "INVITE_INVALID");

    const v = await enrollVolunteer(relay, campaign, coord);
    await relay.app.inject({
      method: "POST",
      url: apiPath(API.revokeVolunteer, { campaignId: cid(), pseudonym: v.pseudonym }),
      headers: bearer(coord),
    });
    const statement = {
      campaignId: cid(),
      role: "volunteer" as const,
      principal: v.pseudonym,
      challenge: await challenge(relay),
    };
    const res = await relay.app.inject({
      method: "POST",
      url: API.session.path,
      payload: { ...statement, signature: signAuthStatement(statement, v.keys.signing.privateKey) },
    });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error.code, "REVOKED");
  });
});

describe("failures inside the relay", () => {
  it("answers 500 with generic text for an internal error", async () => {
    const broken = await startRelay({}, () => {
      throw new Error("secret internal detail at /var/lib/testigo");
    });
    try {
      const res = await broken.app.inject({ method: "POST", url: API.challenge.path });
      assert.equal(res.statusCode, 500);
      assert.equal(res.json().error.code, "INTERNAL");
      assert.equal(res.body.includes("secret"), false);
      assert.equal(res.body.includes("/var/lib"), false);
    } finally {
      await broken.close();
    }
  });

  it("fails closed with 503 when the store is down", async () => {
    const down = await startRelay();
    try {
      const c = await registerCampaign(down, makeCampaign(1));
      const token = await coordinatorToken(down, c, 0);
      await down.store.close();
      const ready = await down.app.inject({ method: "GET", url: "/readyz" });
      assert.equal(ready.statusCode, 503);
      assert.equal(ready.json().error.code, "STORE_UNAVAILABLE");
      assert.equal(ready.headers["retry-after"], "5");
      const inbox = await down.app.inject({
        method: "GET",
        url: apiPath(API.readInbox, { campaignId: c.campaignId }),
        headers: bearer(token),
      });
      assert.equal(inbox.statusCode, 503);
      assert.equal((await down.app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
    } finally {
      await down.close();
    }
  });

  it("rate-limits a credential with 429 and Retry-After", async () => {
    const limited = await startRelay({ rateLimit: { capacity: 3, refillPerSecond: 1 } });
    try {
      const c = await registerCampaign(limited, makeCampaign(1));
      const token = await coordinatorToken(limited, c, 0);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await limited.app.inject({
          method: "GET",
          url: apiPath(API.readInbox, { campaignId: c.campaignId }),
          headers: bearer(token),
        });
        statuses.push(res.statusCode);
        if (res.statusCode === 429) {
          assert.equal(res.json().error.code, "RATE_LIMITED");
          assert.ok(Number(res.headers["retry-after"]) >= 1);
        }
      }
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      limited.now += 2000;
      const later = await limited.app.inject({
        method: "GET",
        url: apiPath(API.readInbox, { campaignId: c.campaignId }),
        headers: bearer(token),
      });
      assert.equal(later.statusCode, 200);
    } finally {
      await limited.close();
    }
  });
});

describe("logs", () => {
  it("after all of the above, contain no IP address, pseudonym, token or raw URL", () => {
    const text = relay.logs.join("");
    assert.ok(relay.logs.length > 50, "requests were logged");
    assert.equal(/\b127\.0\.0\.1\b|remoteAddress|::1|::ffff/.test(text), false, "no IP address");
    assert.equal(/v-[0-9A-HJKMNP-TV-Z]{16}/.test(text), false, "no pseudonym");
    assert.equal(text.includes(volunteer.token), false, "no session token");
    assert.equal(text.includes(coord), false, "no session token");
    assert.equal(text.includes(OPERATOR_TOKEN), false, "no operator token");
    assert.equal(text.includes(campaign.campaignId), false, "no raw URL (campaign ids only appear in URLs)");
    assert.match(text, /"route":"\/v1\/campaigns\/:campaignId\/envelopes"/);
  });
});
