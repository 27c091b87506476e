// Every route's happy path, on a real SqliteStore, with real keys and signatures.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  API,
  apiPath,
  CONTROL_MESSAGE_BYTES,
  createEpochKey,
  createRoster,
  epochAt,
  epochKeysResponse,
  fromBase64url,
  inboxResponse,
  initSodium,
  MAILBOX_SLOTS,
  mailboxResponse,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  publicKeysOf,
  randomBytes,
  rosterResponse,
  toBase64url,
  volunteerListResponse,
} from "@testigo/protocol";
import {
  bearer,
  type Campaign,
  coordinatorToken,
  enrollVolunteer,
  makeCampaign,
  makeEnvelope,
  octet,
  type Relay,
  registerCampaign,
  startRelay,
  type Volunteer,
} from "./test-fixture.js";

let relay: Relay;
let campaign: Campaign;
let coord1: string;
let coord2: string;
let volunteer: Volunteer;

before(async () => {
  await initSodium();
  relay = await startRelay();
  campaign = await registerCampaign(relay, makeCampaign(2));
  coord1 = await coordinatorToken(relay, campaign, 0);
  coord2 = await coordinatorToken(relay, campaign, 1);
  volunteer = await enrollVolunteer(relay, campaign, coord1);
});

after(async () => {
  await relay.close();
});

const c = () => ({ campaignId: campaign.campaignId });

describe("campaigns and rosters", () => {
  it("serves the signed roster exactly as registered", async () => {
    const res = await relay.app.inject({ method: "GET", url: apiPath(API.getRoster, c()) });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(rosterResponse.parse(res.json()).roster, campaign.rosterDoc);
  });

  it("refuses a second registration of the same campaign with 409", async () => {
    const again = await relay.app.inject({
      method: "POST",
      url: API.registerCampaign.path,
      headers: bearer("operator-token-0123456789-abcdefghijklmnop"),
      payload: { roster: campaign.rosterDoc },
    });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, "CAMPAIGN_EXISTS");
  });

  it("accepts a roster update with a higher serial and refuses a stale one", async () => {
    const updated = createRoster({
      root: campaign.root,
      serial: 2,
      issuedAt: relay.now,
      devices: campaign.devices.map((d) => ({ id: d.id, ...publicKeysOf(d.keys) })),
    });
    const ok = await relay.app.inject({
      method: "PUT",
      url: apiPath(API.putRoster, c()),
      headers: bearer(coord1),
      payload: { roster: updated },
    });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().serial, 2);
    const stale = await relay.app.inject({
      method: "PUT",
      url: apiPath(API.putRoster, c()),
      headers: bearer(coord1),
      payload: { roster: campaign.rosterDoc },
    });
    assert.equal(stale.statusCode, 409);
    assert.equal(stale.json().error.code, "ROSTER_STALE");
    const served = await relay.app.inject({ method: "GET", url: apiPath(API.getRoster, c()) });
    assert.deepEqual(served.json().roster, updated);
  });
});

describe("epoch keys", () => {
  it("stores a device's signed documents and serves them by device id", async () => {
    const device = campaign.devices[0];
    assert.ok(device);
    const doc = createEpochKey({
      campaignId: campaign.campaignId,
      deviceId: device.id,
      epoch: epochAt(relay.now),
      deviceSigningKey: device.keys.signing.privateKey,
    }).signed;
    const put = await relay.app.inject({
      method: "PUT",
      url: apiPath(API.putEpochKeys, c()),
      headers: bearer(coord1),
      payload: { documents: [doc] },
    });
    assert.equal(put.statusCode, 204, put.body);
    const get = await relay.app.inject({ method: "GET", url: apiPath(API.getEpochKeys, c()) });
    assert.equal(get.statusCode, 200);
    assert.deepEqual(epochKeysResponse.parse(get.json()).devices, { "laptop-1": [doc] });
    // The relay remembers parsed documents by their stored bytes: a republication is served at once.
    const next = createEpochKey({
      campaignId: campaign.campaignId,
      deviceId: device.id,
      epoch: epochAt(relay.now) + 1,
      deviceSigningKey: device.keys.signing.privateKey,
    }).signed;
    const republished = await relay.app.inject({
      method: "PUT",
      url: apiPath(API.putEpochKeys, c()),
      headers: bearer(coord1),
      payload: { documents: [doc, next] },
    });
    assert.equal(republished.statusCode, 204, republished.body);
    const again = await relay.app.inject({ method: "GET", url: apiPath(API.getEpochKeys, c()) });
    assert.deepEqual(epochKeysResponse.parse(again.json()).devices, { "laptop-1": [doc, next] });
  });
});

describe("submissions and inboxes", () => {
  it("accepts an envelope, answers the same for a retry, and fans it out to every coordinator once", async () => {
    const { messageId, bytes } = makeEnvelope(campaign.campaignId);
    const url = apiPath(API.submitEnvelope, c());
    const first = await relay.app.inject({
      method: "POST",
      url,
      headers: octet(volunteer.token),
      payload: Buffer.from(bytes),
    });
    assert.equal(first.statusCode, 202, first.body);
    assert.deepEqual(first.json(), { status: "accepted", messageId });
    const retry = await relay.app.inject({
      method: "POST",
      url,
      headers: octet(volunteer.token),
      payload: Buffer.from(bytes),
    });
    assert.equal(retry.statusCode, 202);
    assert.equal(retry.body, first.body);

    for (const token of [coord1, coord2]) {
      const inbox = await relay.app.inject({
        method: "GET",
        url: `${apiPath(API.readInbox, c())}?limit=10`,
        headers: bearer(token),
      });
      assert.equal(inbox.statusCode, 200, inbox.body);
      const items = inboxResponse.parse(inbox.json()).items.filter((i) => i.kind === "envelope");
      assert.equal(items.length, 1);
      const item = items[0];
      assert.ok(item?.kind === "envelope");
      assert.deepEqual(fromBase64url(item.envelope), bytes);
      assert.equal(item.receivedAt % 60_000, 0, "receivedAt is coarsened to the minute");
      const ack = await relay.app.inject({
        method: "POST",
        url: apiPath(API.ackInbox, c()),
        headers: bearer(token),
        payload: { cursors: [item.cursor] },
      });
      assert.equal(ack.statusCode, 200, ack.body);
      assert.equal(ack.json().acked, 1);
      const empty = await relay.app.inject({ method: "GET", url: apiPath(API.readInbox, c()), headers: bearer(token) });
      assert.deepEqual(empty.json().items, []);
    }
  });

  it("answers 409 for the same message id with different bytes", async () => {
    const { messageId, bytes } = makeEnvelope(campaign.campaignId);
    const url = apiPath(API.submitEnvelope, c());
    await relay.app.inject({ method: "POST", url, headers: octet(volunteer.token), payload: Buffer.from(bytes) });
    const other = makeEnvelope(campaign.campaignId, messageId);
    const res = await relay.app.inject({
      method: "POST",
      url,
      headers: octet(volunteer.token),
      payload: Buffer.from(other.bytes),
    });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, "CONFLICT");
  });
});

describe("photos", () => {
  it("uploads chunks idempotently, resumes, and shows a complete photo to coordinators", async () => {
    const photoId = toBase64url(randomBytes(16));
    const p = { ...c(), photoId };
    const create = await relay.app.inject({
      method: "PUT",
      url: apiPath(API.createPhoto, p),
      headers: bearer(volunteer.token),
      payload: { chunkCount: 2 },
    });
    assert.equal(create.statusCode, 201, create.body);
    const again = await relay.app.inject({
      method: "PUT",
      url: apiPath(API.createPhoto, p),
      headers: bearer(volunteer.token),
      payload: { chunkCount: 2 },
    });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().status, "exists");

    const chunks = [randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES), randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES)];
    const put = (index: number) =>
      relay.app.inject({
        method: "PUT",
        url: apiPath(API.putChunk, { ...p, index }),
        headers: octet(volunteer.token),
        payload: Buffer.from(chunks[index] ?? new Uint8Array()),
      });
    const first = await put(1);
    assert.equal(first.statusCode, 200, first.body);
    assert.deepEqual(first.json(), { status: "stored", complete: false });
    assert.deepEqual((await put(1)).json(), { status: "stored", complete: false });

    const have = await relay.app.inject({
      method: "GET",
      url: apiPath(API.listChunks, p),
      headers: bearer(volunteer.token),
    });
    assert.deepEqual(have.json(), { have: [1] });
    const early = await relay.app.inject({
      method: "GET",
      url: apiPath(API.getChunk, { ...p, index: 1 }),
      headers: bearer(coord1),
    });
    assert.equal(early.statusCode, 404, "an incomplete photo is not visible");

    assert.deepEqual((await put(0)).json(), { status: "stored", complete: true });
    const inbox = await relay.app.inject({ method: "GET", url: apiPath(API.readInbox, c()), headers: bearer(coord2) });
    const photo = inboxResponse.parse(inbox.json()).items.find((i) => i.kind === "photo");
    assert.ok(photo?.kind === "photo");
    assert.equal(photo.photoId, photoId);
    assert.equal(photo.chunkCount, 2);
    for (const index of [0, 1]) {
      const res = await relay.app.inject({
        method: "GET",
        url: apiPath(API.getChunk, { ...p, index }),
        headers: bearer(coord2),
      });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-type"], "application/octet-stream");
      assert.deepEqual(new Uint8Array(res.rawPayload), chunks[index]);
    }
  });
});

describe("mailboxes", () => {
  it("pads every mailbox response to the same size, whatever it holds", async () => {
    const read = () =>
      relay.app.inject({ method: "GET", url: apiPath(API.readMailbox, c()), headers: bearer(volunteer.token) });
    const empty = await read();
    assert.equal(empty.statusCode, 200, empty.body);
    assert.equal(mailboxResponse.parse(empty.json()).slots.length, MAILBOX_SLOTS);

    const message = randomBytes(CONTROL_MESSAGE_BYTES);
    const url = apiPath(API.putMailbox, { ...c(), pseudonym: volunteer.pseudonym });
    const put = await relay.app.inject({ method: "POST", url, headers: octet(coord1), payload: Buffer.from(message) });
    assert.equal(put.statusCode, 201, put.body);
    const { messageId } = put.json() as { messageId: string };
    const retry = await relay.app.inject({
      method: "POST",
      url,
      headers: octet(coord1),
      payload: Buffer.from(message),
    });
    assert.equal(retry.statusCode, 200);
    assert.equal(retry.json().messageId, messageId);

    const full = await read();
    assert.equal(full.body.length, empty.body.length, "a mailbox with a message is as long as an empty one");
    const slots = mailboxResponse.parse(full.json()).slots;
    const real = slots.find((s) => s.messageId === messageId);
    assert.deepEqual(fromBase64url(real?.message ?? ""), message);

    const ack = await relay.app.inject({
      method: "POST",
      url: apiPath(API.ackMailbox, c()),
      headers: bearer(volunteer.token),
      payload: { messageIds: [messageId] },
    });
    assert.equal(ack.json().acked, 1);
    const after = mailboxResponse.parse((await read()).json()).slots;
    assert.equal(
      after.some((s) => s.messageId === messageId),
      false,
    );
  });
});

describe("volunteers", () => {
  it("lists volunteers with coarse enrollment times, and revocation ends their sessions and mailbox", async () => {
    const other = await enrollVolunteer(relay, campaign, coord1);
    const list = await relay.app.inject({
      method: "GET",
      url: apiPath(API.listVolunteers, c()),
      headers: bearer(coord1),
    });
    assert.equal(list.statusCode, 200);
    const volunteers = volunteerListResponse.parse(list.json()).volunteers;
    const entry = volunteers.find((v) => v.pseudonym === other.pseudonym);
    assert.ok(entry);
    assert.equal(entry.revoked, false);
    assert.equal(entry.enrolledAt % 3_600_000, 0);

    const revoke = await relay.app.inject({
      method: "POST",
      url: apiPath(API.revokeVolunteer, { ...c(), pseudonym: other.pseudonym }),
      headers: bearer(coord1),
    });
    assert.equal(revoke.statusCode, 200, revoke.body);
    const submit = await relay.app.inject({
      method: "POST",
      url: apiPath(API.submitEnvelope, c()),
      headers: octet(other.token),
      payload: Buffer.from(makeEnvelope(campaign.campaignId).bytes),
    });
    assert.equal(submit.statusCode, 403);
    assert.equal(submit.json().error.code, "REVOKED");
    const mail = await relay.app.inject({
      method: "POST",
      url: apiPath(API.putMailbox, { ...c(), pseudonym: other.pseudonym }),
      headers: octet(coord1),
      payload: Buffer.from(randomBytes(CONTROL_MESSAGE_BYTES)),
    });
    assert.equal(mail.statusCode, 404);
  });
});

describe("operations", () => {
  it("answers /healthz, /readyz and /metrics with counts only", async () => {
    assert.equal((await relay.app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
    assert.equal((await relay.app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
    const metrics = await relay.app.inject({ method: "GET", url: "/metrics" });
    assert.equal(metrics.statusCode, 200);
    assert.match(
      metrics.body,
      /testigo_http_requests_total\{method="POST",route="\/v1\/campaigns\/:campaignId\/envelopes",status="2xx"\} \d+/,
    );
    assert.match(metrics.body, /testigo_submissions_accepted_total \d+/);
    assert.equal(metrics.body.includes(campaign.campaignId), false);
    assert.equal(metrics.body.includes(volunteer.pseudonym), false);
  });
});
