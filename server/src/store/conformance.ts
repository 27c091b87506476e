// The one conformance suite every Store backend passes. Each backend's test file calls
// runStoreConformance with a factory; every test gets a fresh store and its own random
// campaign ids, so backends that share one server (Redis) need no flushing between tests.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import type { CampaignRecord, InboxItem, Store, StoredBucket, VolunteerRecord } from "./store.js";

export interface StoreFixture {
  readonly store: Store;
  cleanup(): Promise<void>;
}

const id = (): string => randomBytes(12).toString("base64url");
const blob = (size: number): Uint8Array => new Uint8Array(randomBytes(size));
const T0 = Date.now();
const HOUR = 3_600_000;

function campaign(devices: readonly string[], serial = 1): CampaignRecord {
  return {
    campaignId: id(),
    rootPublicKey: id(),
    roster: blob(200),
    rosterSerial: serial,
    deviceIds: devices,
    deviceSigningKeys: Object.fromEntries(devices.map((device) => [device, id()])),
    createdAt: T0,
  };
}

function volunteer(campaignId: string, pseudonym = id()): VolunteerRecord {
  return {
    campaignId,
    pseudonym,
    signingKey: id(),
    encryptionKey: id(),
    duressKey: id(),
    enrolledAt: T0,
    revoked: false,
  };
}

function envelopeIds(items: readonly InboxItem[]): string[] {
  return items.map((item) => (item.kind === "envelope" ? item.messageId : `photo:${item.photoId}`));
}

/** Resolves on the next call of a listener, or rejects after `ms` (keeps the test bounded). */
function nextCall<T>(ms: number): { listener: (value: T) => void; called: Promise<T> } {
  let resolve: (value: T) => void = () => {};
  const called = new Promise<T>((res, rej) => {
    resolve = res;
    setTimeout(() => rej(new Error("listener not called in time")), ms).unref();
  });
  return { listener: (value) => resolve(value), called };
}

export function runStoreConformance(name: string, makeStore: () => Promise<StoreFixture>): void {
  const withStore = (fn: (store: Store) => Promise<void>) => async () => {
    const { store, cleanup } = await makeStore();
    try {
      await fn(store);
    } finally {
      await cleanup();
    }
  };

  describe(`Store conformance: ${name}`, { timeout: 60_000 }, () => {
    it(
      "answers ping",
      withStore(async (store) => {
        await store.ping();
      }),
    );

    it(
      "creates a campaign once and returns it byte for byte",
      withStore(async (store) => {
        const record = campaign(["dev-a", "dev-b"]);
        assert.equal(await store.createCampaign(record), true);
        assert.equal(await store.createCampaign({ ...record, rosterSerial: 9 }), false);
        assert.deepEqual(await store.getCampaign(record.campaignId), record);
        assert.equal(await store.getCampaign(id()), undefined);
      }),
    );

    it(
      "replaces a roster only with a greater serial",
      withStore(async (store) => {
        const record = campaign(["dev-a"], 3);
        await store.createCampaign(record);
        const same = { ...record, roster: blob(10), deviceIds: ["dev-a", "dev-b"] };
        assert.equal(await store.updateRoster(same), false);
        assert.equal(await store.updateRoster({ ...same, rosterSerial: 2 }), false);
        const next = { ...same, rosterSerial: 4 };
        assert.equal(await store.updateRoster(next), true);
        assert.deepEqual(await store.getCampaign(record.campaignId), next);
        assert.equal(await store.updateRoster({ ...next, campaignId: id(), rosterSerial: 99 }), false);
      }),
    );

    it(
      "of concurrent roster updates with the same serial exactly one wins",
      withStore(async (store) => {
        const record = campaign(["dev-a"], 1);
        await store.createCampaign(record);
        const results = await Promise.all(
          [1, 2, 3, 4].map(() => store.updateRoster({ ...record, roster: blob(20), rosterSerial: 2 })),
        );
        assert.equal(results.filter(Boolean).length, 1);
      }),
    );

    it(
      "stores and replaces epoch keys per device",
      withStore(async (store) => {
        const record = campaign(["dev-a", "dev-b"]);
        await store.createCampaign(record);
        assert.deepEqual(await store.getEpochKeys(record.campaignId), {});
        const a1 = blob(300);
        const a2 = blob(310);
        const b1 = blob(40);
        await store.putEpochKeys(record.campaignId, "dev-a", a1);
        await store.putEpochKeys(record.campaignId, "dev-b", b1);
        await store.putEpochKeys(record.campaignId, "dev-a", a2);
        assert.deepEqual(await store.getEpochKeys(record.campaignId), { "dev-a": a2, "dev-b": b1 });
      }),
    );

    it(
      "redeems an invite once, refuses expired and unknown ones with one answer",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        await store.addInvites(c, [
          { storedHash: "h-live", expiresAt: T0 + HOUR },
          { storedHash: "h-old", expiresAt: T0 - 1 },
        ]);
        const v = volunteer(c);
        assert.equal(await store.inviteLive(c, "h-live", T0), true);
        assert.equal(await store.inviteLive(c, "h-live", T0 + HOUR), false, "expired at its expiry instant");
        assert.equal(await store.inviteLive(c, "h-old", T0), false);
        assert.equal(await store.inviteLive(c, "h-none", T0), false);
        assert.equal(await store.inviteLive(id(), "h-live", T0), false);
        assert.deepEqual(await store.redeemInvite(c, "h-live", v, T0), { status: "redeemed" });
        assert.equal(await store.inviteLive(c, "h-live", T0), false, "redeemed");
        assert.deepEqual(await store.redeemInvite(c, "h-live", volunteer(c), T0), { status: "unknown" });
        assert.deepEqual(await store.redeemInvite(c, "h-old", volunteer(c), T0), { status: "unknown" });
        assert.deepEqual(await store.redeemInvite(c, "h-none", volunteer(c), T0), { status: "unknown" });
        assert.deepEqual(await store.redeemInvite(id(), "h-live", volunteer(c), T0), { status: "unknown" });
        // An invite used at its expiry instant is expired.
        await store.addInvites(c, [{ storedHash: "h-edge", expiresAt: T0 + 5 }]);
        assert.deepEqual(await store.redeemInvite(c, "h-edge", volunteer(c), T0 + 5), { status: "unknown" });
        assert.deepEqual(await store.getVolunteer(c, v.pseudonym), v);
        assert.equal(await store.getVolunteer(c, id()), undefined);
        // The duress key is kept beside the signing key; a record without one reads back without one.
        const { duressKey: _none, ...legacy } = volunteer(c);
        await store.addInvites(c, [{ storedHash: "h-legacy", expiresAt: T0 + HOUR }]);
        assert.deepEqual(await store.redeemInvite(c, "h-legacy", legacy, T0), { status: "redeemed" });
        assert.deepEqual(await store.getVolunteer(c, legacy.pseudonym), legacy);
        assert.deepEqual(
          (await store.listVolunteers(c)).find((x) => x.pseudonym === v.pseudonym),
          v,
        );
      }),
    );

    it(
      "keeps existing invites when added again, and refuses a taken pseudonym without burning the invite",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        await store.addInvites(c, [{ storedHash: "h1", expiresAt: T0 + HOUR }]);
        await store.addInvites(c, [{ storedHash: "h1", expiresAt: T0 - 1 }]); // does not shorten it
        await store.addInvites(c, [{ storedHash: "h2", expiresAt: T0 + HOUR }]);
        const v = volunteer(c);
        assert.deepEqual(await store.redeemInvite(c, "h1", v, T0), { status: "redeemed" });
        assert.deepEqual(await store.redeemInvite(c, "h2", volunteer(c, v.pseudonym), T0), {
          status: "pseudonym-taken",
        });
        assert.deepEqual(await store.redeemInvite(c, "h2", volunteer(c), T0), { status: "redeemed" });
        assert.equal((await store.listVolunteers(c)).length, 2);
      }),
    );

    it(
      "of concurrent redemptions of one invite exactly one wins",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        await store.addInvites(c, [{ storedHash: "race", expiresAt: T0 + HOUR }]);
        const results = await Promise.all(
          Array.from({ length: 8 }, () => store.redeemInvite(c, "race", volunteer(c), T0)),
        );
        assert.equal(results.filter((r) => r.status === "redeemed").length, 1);
        assert.equal(results.filter((r) => r.status === "unknown").length, 7);
        assert.equal((await store.listVolunteers(c)).length, 1);
      }),
    );

    it(
      "revokes a volunteer: the record says so and the mailbox is gone",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        await store.addInvites(c, [{ storedHash: "h", expiresAt: T0 + HOUR }]);
        const v = volunteer(c);
        await store.redeemInvite(c, "h", v, T0);
        assert.equal(
          await store.putMailbox(c, v.pseudonym, { messageId: "m1", message: blob(1024) }, T0 + HOUR),
          "stored",
        );
        await store.revokeVolunteer(c, v.pseudonym);
        assert.deepEqual(await store.getVolunteer(c, v.pseudonym), { ...v, revoked: true });
        assert.deepEqual(await store.listVolunteers(c), [{ ...v, revoked: true }]);
        assert.deepEqual(await store.readMailbox(c, v.pseudonym, 10, T0), []);
        assert.equal(
          await store.putMailbox(c, v.pseudonym, { messageId: "m2", message: blob(1024) }, T0 + HOUR),
          "unknown-volunteer",
        );
      }),
    );

    it(
      "burns a challenge exactly once, also under concurrent attempts",
      withStore(async (store) => {
        const live = id();
        const takes = await Promise.all([1, 2, 3].map(() => store.burnChallenge(live, T0 + 60_000)));
        assert.deepEqual(takes.sort(), [false, false, true]);
        assert.equal(await store.burnChallenge(live, T0 + 60_000), false);
        assert.equal(await store.burnChallenge(id(), T0 + 60_000), true, "another challenge is independent");
      }),
    );

    it(
      "keeps the first relay secret: concurrent candidates all get the same one",
      withStore(async (store) => {
        const candidates = Array.from({ length: 4 }, () => blob(32));
        const secrets = await Promise.all(candidates.map((candidate) => store.relaySecret(candidate)));
        const first = secrets[0];
        assert.ok(first !== undefined && first.length === 32);
        assert.ok(candidates.some((candidate) => Buffer.from(candidate).equals(first)));
        for (const secret of secrets) assert.deepEqual(secret, first);
        assert.deepEqual(await store.relaySecret(blob(32)), first);
      }),
    );

    it(
      "submits idempotently: accepted, duplicate, conflict; a duplicate adds nothing",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        const envelope = blob(2048);
        assert.deepEqual(await store.submitEnvelope(c, "m1", envelope, T0), { status: "accepted" });
        assert.deepEqual(await store.submitEnvelope(c, "m1", envelope.slice(), T0 + 5), { status: "duplicate" });
        const other = envelope.slice();
        other[100] = (other[100] ?? 0) ^ 1;
        assert.deepEqual(await store.submitEnvelope(c, "m1", other, T0 + 5), { status: "conflict" });
        const concurrent = await Promise.all([1, 2, 3, 4].map(() => store.submitEnvelope(c, "m2", envelope, T0 + 10)));
        assert.equal(concurrent.filter((r) => r.status === "accepted").length, 1);
        const items = await store.readInbox(c, "dev-a", 100);
        assert.deepEqual(envelopeIds(items), ["m1", "m2"]);
        const first = items[0];
        assert.ok(first?.kind === "envelope");
        assert.deepEqual(first.envelope, envelope);
        assert.equal(first.receivedAt, T0);
      }),
    );

    it(
      "fans out to every device; data goes once every device acked; late retries stay duplicates",
      withStore(async (store) => {
        const record = campaign(["dev-a", "dev-b"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        const envelope = blob(512);
        await store.submitEnvelope(c, "m1", envelope, T0);
        const a = await store.readInbox(c, "dev-a", 10);
        const b = await store.readInbox(c, "dev-b", 10);
        assert.deepEqual(envelopeIds(a), ["m1"]);
        assert.deepEqual(envelopeIds(b), ["m1"]);
        assert.deepEqual(a[0]?.kind === "envelope" && a[0].envelope, envelope);
        assert.deepEqual(b[0]?.kind === "envelope" && b[0].envelope, envelope);
        assert.equal(await store.ackInbox(c, "dev-a", [a[0]?.cursor ?? "", "999999999-0", "nonsense"]), 1);
        assert.equal(await store.ackInbox(c, "dev-a", [a[0]?.cursor ?? ""]), 0);
        assert.deepEqual(await store.readInbox(c, "dev-a", 10), []);
        assert.deepEqual(envelopeIds(await store.readInbox(c, "dev-b", 10)), ["m1"]);
        assert.equal(await store.ackInbox(c, "dev-b", [b[0]?.cursor ?? ""]), 1);
        assert.deepEqual(await store.readInbox(c, "dev-b", 10), []);
        assert.deepEqual(await store.submitEnvelope(c, "m1", envelope, T0 + 1), { status: "duplicate" });
        assert.deepEqual(await store.readInbox(c, "dev-a", 10), []);
        assert.deepEqual(await store.readInbox(c, "unknown-device", 10), []);
        assert.equal(await store.ackInbox(c, "unknown-device", [a[0]?.cursor ?? ""]), 0);
      }),
    );

    it(
      "resumes unacked items on the next read and keeps arrival order across pages",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        const ids = Array.from({ length: 23 }, (_, i) => `m${String(i).padStart(2, "0")}`);
        for (const [i, messageId] of ids.entries()) await store.submitEnvelope(c, messageId, blob(64), T0 + i);
        // Page through without acking: cursors move forward, order is arrival order.
        const seen: string[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await store.readInbox(c, "dev-a", 7, cursor);
          if (page.length === 0) break;
          seen.push(...envelopeIds(page));
          cursor = page.at(-1)?.cursor;
        }
        assert.deepEqual(seen, ids);
        // Nothing acked: a fresh read (a reconnect) starts from the first unacked item again.
        const again = await store.readInbox(c, "dev-a", 5);
        assert.deepEqual(envelopeIds(again), ids.slice(0, 5));
        // Ack every other item of the first five; the rest come back, still in order.
        await store.ackInbox(
          c,
          "dev-a",
          again.filter((_, i) => i % 2 === 0).map((item) => item.cursor),
        );
        const rest = await store.readInbox(c, "dev-a", 100);
        assert.deepEqual(envelopeIds(rest), [ids[1], ids[3], ...ids.slice(5)]);
        // Cursors are strictly increasing strings the store understands.
        const later = await store.readInbox(c, "dev-a", 100, rest[2]?.cursor);
        assert.deepEqual(envelopeIds(later), ids.slice(6));
      }),
    );

    it(
      "assembles photos: out of order, duplicates, conflicts, invisible until complete, one item, deleted after all acks",
      withStore(async (store) => {
        const record = campaign(["dev-a", "dev-b"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        assert.equal(await store.createPhoto(c, "p1", 3, T0), "created");
        assert.equal(await store.createPhoto(c, "p1", 3, T0), "exists");
        assert.equal(await store.createPhoto(c, "p1", 4, T0), "conflict");
        assert.equal(await store.listPhotoChunks(c, "nope"), undefined);
        assert.deepEqual(await store.putPhotoChunk(c, "nope", 0, blob(10), T0), { status: "unknown-photo" });
        const chunks = [blob(1000), blob(1000), blob(700)];
        const [c0, c1, c2] = chunks as [Uint8Array, Uint8Array, Uint8Array];
        assert.deepEqual(await store.putPhotoChunk(c, "p1", 2, c2, T0), { status: "stored", complete: false });
        assert.deepEqual(await store.putPhotoChunk(c, "p1", 2, c2, T0), { status: "duplicate", complete: false });
        assert.deepEqual(await store.putPhotoChunk(c, "p1", 2, c0, T0), { status: "conflict" });
        assert.deepEqual(await store.putPhotoChunk(c, "p1", 3, c0, T0), { status: "conflict" });
        assert.deepEqual(await store.putPhotoChunk(c, "p1", -1, c0, T0), { status: "conflict" });
        assert.deepEqual(await store.putPhotoChunk(c, "p1", 0, c0, T0), { status: "stored", complete: false });
        assert.deepEqual(await store.listPhotoChunks(c, "p1"), [0, 2]);
        assert.deepEqual(await store.readInbox(c, "dev-a", 10), []);
        assert.equal(await store.getPhotoChunk(c, "p1", 0), undefined);
        assert.deepEqual(await store.putPhotoChunk(c, "p1", 1, c1, T0 + 7), { status: "stored", complete: true });
        assert.deepEqual(await store.putPhotoChunk(c, "p1", 1, c1, T0 + 8), { status: "duplicate", complete: true });
        assert.deepEqual(await store.listPhotoChunks(c, "p1"), [0, 1, 2]);
        for (const device of ["dev-a", "dev-b"]) {
          const items = await store.readInbox(c, device, 10);
          assert.equal(items.length, 1);
          const item = items[0];
          assert.ok(item?.kind === "photo");
          assert.equal(item.photoId, "p1");
          assert.equal(item.chunkCount, 3);
          assert.equal(item.receivedAt, T0 + 7);
        }
        for (const [index, chunk] of chunks.entries()) {
          assert.deepEqual(await store.getPhotoChunk(c, "p1", index), chunk);
        }
        assert.equal(await store.getPhotoChunk(c, "p1", 3), undefined);
        const [a] = await store.readInbox(c, "dev-a", 10);
        await store.ackInbox(c, "dev-a", [a?.cursor ?? ""]);
        assert.deepEqual(await store.getPhotoChunk(c, "p1", 0), c0); // dev-b has not acked yet
        const [b] = await store.readInbox(c, "dev-b", 10);
        await store.ackInbox(c, "dev-b", [b?.cursor ?? ""]);
        assert.equal(await store.getPhotoChunk(c, "p1", 0), undefined);
        // A late resume neither re-uploads nor re-delivers.
        assert.deepEqual(await store.listPhotoChunks(c, "p1"), [0, 1, 2]);
        assert.deepEqual(await store.putPhotoChunk(c, "p1", 1, c1, T0 + 9), { status: "duplicate", complete: true });
        assert.equal(await store.createPhoto(c, "p1", 3, T0 + 9), "exists");
        assert.deepEqual(await store.readInbox(c, "dev-a", 10), []);
      }),
    );

    it(
      "stores a chunk run atomically: a refused run (range, other bytes) writes nothing; retries are duplicates; one inbox item",
      withStore(async (store) => {
        const record = campaign(["dev-a", "dev-b"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        assert.deepEqual(await store.putPhotoChunks(c, "nope", 0, [blob(10)], T0), { status: "unknown-photo" });
        assert.equal(await store.createPhoto(c, "p", 5, T0), "created");
        const chunks = [blob(900), blob(900), blob(900), blob(900), blob(400)];
        const [c0, c1, c2, c3, c4] = chunks as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
        // Out of range at either end, or empty: refused, nothing written.
        assert.deepEqual(await store.putPhotoChunks(c, "p", 3, [c3, c4, blob(10)], T0), { status: "conflict" });
        assert.deepEqual(await store.putPhotoChunks(c, "p", -1, [c0], T0), { status: "conflict" });
        assert.deepEqual(await store.putPhotoChunks(c, "p", 0, [], T0), { status: "conflict" });
        assert.deepEqual(await store.listPhotoChunks(c, "p"), []);
        assert.deepEqual(await store.putPhotoChunks(c, "p", 1, [c1, c2], T0), {
          status: "stored",
          stored: 2,
          duplicate: 0,
          complete: false,
        });
        // A run overlapping a held chunk with other bytes: refused whole, its new chunks unwritten.
        assert.deepEqual(await store.putPhotoChunks(c, "p", 0, [c0, c1, c0], T0), { status: "conflict" });
        assert.deepEqual(await store.listPhotoChunks(c, "p"), [1, 2]);
        // A retry of the same run: duplicates, nothing new.
        assert.deepEqual(await store.putPhotoChunks(c, "p", 1, [c1, c2], T0), {
          status: "stored",
          stored: 0,
          duplicate: 2,
          complete: false,
        });
        // Single chunks and runs mix: index 4 alone, then a run over held and missing chunks.
        assert.deepEqual(await store.putPhotoChunk(c, "p", 4, c4, T0), { status: "stored", complete: false });
        assert.deepEqual(await store.readInbox(c, "dev-a", 10), []);
        assert.equal(await store.getPhotoChunk(c, "p", 1), undefined);
        assert.deepEqual(await store.putPhotoChunks(c, "p", 0, [c0, c1, c2, c3, c4], T0 + 7), {
          status: "stored",
          stored: 2,
          duplicate: 3,
          complete: true,
        });
        assert.deepEqual(await store.putPhotoChunks(c, "p", 2, [c2, c3], T0 + 8), {
          status: "stored",
          stored: 0,
          duplicate: 2,
          complete: true,
        });
        assert.deepEqual(await store.putPhotoChunk(c, "p", 3, c3, T0 + 8), { status: "duplicate", complete: true });
        for (const device of ["dev-a", "dev-b"]) {
          const items = await store.readInbox(c, device, 10);
          assert.equal(items.length, 1, "one inbox item per device for the photo");
          assert.ok(items[0]?.kind === "photo");
          assert.equal(items[0].chunkCount, 5);
          assert.equal(items[0].receivedAt, T0 + 7);
        }
        for (const [index, chunk] of chunks.entries())
          assert.deepEqual(await store.getPhotoChunk(c, "p", index), chunk);
        // Delivered and deleted: a late retry is a duplicate, and delivers nothing again.
        for (const device of ["dev-a", "dev-b"]) {
          const [item] = await store.readInbox(c, device, 10);
          await store.ackInbox(c, device, [item?.cursor ?? ""]);
        }
        assert.equal(await store.getPhotoChunk(c, "p", 0), undefined);
        assert.deepEqual(await store.putPhotoChunks(c, "p", 0, [c0, c1], T0 + 9), {
          status: "stored",
          stored: 0,
          duplicate: 2,
          complete: true,
        });
        assert.deepEqual(await store.readInbox(c, "dev-a", 10), []);
      }),
    );

    it(
      "completes a photo once when chunk runs race",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        await store.createPhoto(c, "p", 4, T0);
        const chunks = [blob(300), blob(300), blob(300), blob(300)];
        const results = await Promise.all([
          store.putPhotoChunks(c, "p", 0, chunks.slice(0, 3), T0),
          store.putPhotoChunks(c, "p", 1, chunks.slice(1, 4), T0),
          store.putPhotoChunks(c, "p", 0, chunks, T0),
        ]);
        const stored = results.reduce((sum, r) => sum + (r.status === "stored" ? r.stored : Number.NaN), 0);
        assert.equal(stored, 4);
        assert.ok(results.some((r) => r.status === "stored" && r.complete));
        assert.equal((await store.readInbox(c, "dev-a", 10)).length, 1);
      }),
    );

    it(
      "frees data held for a device that left the roster, and gives new devices an inbox",
      withStore(async (store) => {
        const record = campaign(["dev-a", "dev-b"], 1);
        await store.createCampaign(record);
        const c = record.campaignId;
        await store.createPhoto(c, "p", 1, T0);
        const chunk = blob(100);
        await store.putPhotoChunk(c, "p", 0, chunk, T0);
        const [a] = await store.readInbox(c, "dev-a", 10);
        await store.ackInbox(c, "dev-a", [a?.cursor ?? ""]);
        assert.deepEqual(await store.getPhotoChunk(c, "p", 0), chunk);
        assert.equal(await store.updateRoster({ ...record, rosterSerial: 2, deviceIds: ["dev-a", "dev-c"] }), true);
        assert.equal(await store.getPhotoChunk(c, "p", 0), undefined);
        await store.submitEnvelope(c, "after", blob(50), T0 + 1);
        assert.deepEqual(envelopeIds(await store.readInbox(c, "dev-c", 10)), ["after"]);
        assert.deepEqual(envelopeIds(await store.readInbox(c, "dev-a", 10)), ["after"]);
        assert.deepEqual(await store.readInbox(c, "dev-b", 10), []);
      }),
    );

    it(
      "keeps fixed-size mailbox items in order until acked or expired",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        await store.addInvites(c, [{ storedHash: "h", expiresAt: T0 + HOUR }]);
        const v = volunteer(c);
        await store.redeemInvite(c, "h", v, T0);
        const p = v.pseudonym;
        const m1 = { messageId: "m1", message: blob(1024) };
        const m2 = { messageId: "m2", message: blob(1024) };
        const m3 = { messageId: "m3", message: blob(1024) };
        assert.equal(await store.putMailbox(c, p, m1, T0 + HOUR), "stored");
        assert.equal(await store.putMailbox(c, p, m1, T0 + HOUR), "duplicate");
        assert.equal(await store.putMailbox(c, p, m2, T0 + 10), "stored");
        assert.equal(await store.putMailbox(c, p, m3, T0 + HOUR), "stored");
        assert.equal(await store.putMailbox(c, id(), m1, T0 + HOUR), "unknown-volunteer");
        assert.deepEqual(await store.readMailbox(c, p, 10, T0), [m1, m2, m3]);
        assert.deepEqual(await store.readMailbox(c, p, 2, T0), [m1, m2]);
        assert.deepEqual(await store.readMailbox(c, p, 10, T0 + 10), [m1, m3]); // m2 expired
        assert.equal(await store.ackMailbox(c, p, ["m1", "zzz"]), 1);
        assert.equal(await store.ackMailbox(c, p, ["m1"]), 0);
        assert.deepEqual(await store.readMailbox(c, p, 10, T0), [m2, m3]);
      }),
    );

    it(
      "merges rate-limit draws atomically, keeps only buckets below capacity, and returns them all",
      withStore(async (store) => {
        const x = id();
        const y = id();
        const draw = (bucket: string, taken: number, level: number) => ({
          bucket,
          taken,
          level,
          capacity: 5,
          refillPerSecond: 2,
        });
        const byName = (buckets: readonly StoredBucket[]) =>
          Object.fromEntries(buckets.map((b) => [b.bucket, { tokens: b.tokens, at: b.at }]));
        assert.deepEqual(await store.mergeRateBuckets([], T0), []);
        // A first draw stores the node's own level; a full one is not stored at all.
        const first = await store.mergeRateBuckets([draw(x, 3, 2), draw(y, 0, 5)], T0);
        assert.deepEqual(byName(first), { [x]: { tokens: 2, at: T0 } });
        assert.deepEqual(first[0], { bucket: x, tokens: 2, at: T0, capacity: 5, refillPerSecond: 2 });
        // Another node's draws are subtracted from the stored level, concurrently and exactly.
        const concurrent = await Promise.all([1, 2].map(() => store.mergeRateBuckets([draw(x, 0.5, 4)], T0)));
        assert.deepEqual(byName(concurrent.at(-1) ?? []), { [x]: { tokens: 1, at: T0 } });
        // Levels may go below zero (a debt); refill is counted from the stored time.
        assert.deepEqual(byName(await store.mergeRateBuckets([draw(x, 2, 0)], T0)), { [x]: { tokens: -1, at: T0 } });
        assert.deepEqual(byName(await store.mergeRateBuckets([draw(x, 2, 0)], T0 + 2_000)), {
          [x]: { tokens: 1, at: T0 + 2_000 },
        });
        // A merge without draws changes nothing stored, and drops buckets refilled to capacity.
        assert.deepEqual(byName(await store.mergeRateBuckets([], T0 + 3_000)), { [x]: { tokens: 1, at: T0 + 2_000 } });
        assert.deepEqual(await store.mergeRateBuckets([], T0 + 4_000), []);
        assert.deepEqual(await store.mergeRateBuckets([], T0), []);
      }),
    );

    it(
      "expires everything older than the retention",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const c = record.campaignId;
        await store.submitEnvelope(c, "old", blob(64), T0 - 2 * HOUR);
        await store.submitEnvelope(c, "new", blob(64), T0);
        await store.createPhoto(c, "old-photo", 2, T0 - 2 * HOUR);
        await store.putPhotoChunk(c, "old-photo", 0, blob(64), T0 - 2 * HOUR);
        await store.putPhotoChunk(c, "old-photo", 1, blob(64), T0);
        await store.createPhoto(c, "old-incomplete", 2, T0 - 2 * HOUR);
        await store.putPhotoChunk(c, "old-incomplete", 0, blob(64), T0 - 2 * HOUR);
        await store.addInvites(c, [
          { storedHash: "expired", expiresAt: T0 - 1 },
          { storedHash: "live", expiresAt: T0 + HOUR },
        ]);
        const removed = await store.expire(T0 - HOUR, T0);
        assert.ok(removed >= 4, `removed ${removed}`);
        assert.deepEqual(envelopeIds(await store.readInbox(c, "dev-a", 10)), ["new"]);
        assert.equal(await store.listPhotoChunks(c, "old-photo"), undefined);
        assert.equal(await store.getPhotoChunk(c, "old-photo", 0), undefined);
        assert.equal(await store.listPhotoChunks(c, "old-incomplete"), undefined);
        // Past retention the idempotency record goes too; within it, it stays.
        assert.deepEqual(await store.submitEnvelope(c, "old", blob(64), T0 + 1), { status: "accepted" });
        assert.deepEqual(await store.submitEnvelope(c, "new", blob(64), T0 + 1), { status: "conflict" });
        const v = volunteer(c);
        assert.deepEqual(await store.redeemInvite(c, "live", v, T0 - 10), { status: "redeemed" });
        await store.addInvites(c, [{ storedHash: "expired", expiresAt: T0 + HOUR }]);
        // "expired" was deleted by expire(), so adding it again registers it afresh.
        assert.deepEqual(await store.redeemInvite(c, "expired", volunteer(c), T0), { status: "redeemed" });
      }),
    );

    it(
      "notifies inbox listeners on append, and not after unsubscribing",
      withStore(async (store) => {
        const record = campaign(["dev-a"]);
        await store.createCampaign(record);
        const { listener, called } = nextCall<string>(5_000);
        const calls: string[] = [];
        const unsubscribe = await store.onInboxAppend((campaignId) => {
          calls.push(campaignId);
          listener(campaignId);
        });
        await store.submitEnvelope(record.campaignId, "m1", blob(64), T0);
        assert.equal(await called, record.campaignId);
        await unsubscribe();
        const count = calls.length;
        await store.submitEnvelope(record.campaignId, "m2", blob(64), T0);
        await store.ping();
        assert.equal(calls.length, count);
      }),
    );
  });
}
