import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { RedisStore } from "../store/redis-store.js";
import { SqliteStore } from "../store/sqlite-store.js";
import type { CampaignRecord, Store } from "../store/store.js";
import { type RedisClusterProcess, type RedisProcess, startRedis, startRedisCluster } from "./redis-server.js";
import { digestChanges, type StoreTarget, sectionOf, storeDigest } from "./store-digest.js";

function campaign(): CampaignRecord {
  return {
    campaignId: randomBytes(9).toString("base64url"),
    rootPublicKey: "root",
    roster: new Uint8Array([1, 2, 3]),
    rosterSerial: 1,
    deviceIds: ["dev-a", "dev-b"],
    deviceSigningKeys: { "dev-a": "ka", "dev-b": "kb" },
    createdAt: 1_000,
  };
}

const NOW = Date.UTC(2024, 6, 28, 18);

/** The same scenario on each backend: reads change nothing, every kind of write changes its section. */
async function scenario(store: Store, target: StoreTarget): Promise<void> {
  const digest = () => storeDigest(target);
  const empty = await digest();
  assert.equal((await digest()).digest, empty.digest, "digesting twice gives the same digest");

  const record = campaign();
  const id = record.campaignId;
  await store.createCampaign(record);
  const created = await digest();
  assert.notEqual(created.digest, empty.digest, "a new campaign changes the digest");
  assert.ok(digestChanges(empty, created).length > 0);

  const envelope = new Uint8Array(randomBytes(300));
  assert.equal((await store.submitEnvelope(id, "m1", envelope, NOW)).status, "accepted");
  const submitted = await digest();
  assert.notEqual(submitted.digest, created.digest, "an accepted envelope changes the digest");

  // Reads, a duplicate and a conflicting submission store nothing.
  assert.equal((await store.submitEnvelope(id, "m1", envelope, NOW)).status, "duplicate");
  const other = new Uint8Array(envelope);
  other[0] = (other[0] ?? 0) ^ 1;
  assert.equal((await store.submitEnvelope(id, "m1", other, NOW)).status, "conflict");
  await store.getCampaign(id);
  await store.listVolunteers(id);
  await store.getEpochKeys(id);
  assert.equal((await store.readInbox(id, "dev-a", 100)).length, 1);
  assert.equal((await store.readInbox(id, "dev-b", 100)).length, 1);
  await store.listPhotoChunks(id, "nope");
  assert.equal((await digest()).digest, submitted.digest, "reads, duplicates and conflicts change nothing");

  // One differing byte in one stored blob changes the digest.
  await store.submitEnvelope(id, "m2", envelope, NOW);
  const a = await digest();
  await store.ackInbox(id, "dev-a", []);
  assert.equal((await digest()).digest, a.digest);
  const items = await store.readInbox(id, "dev-a", 100);
  const first = items[0];
  assert.ok(first !== undefined);
  await store.ackInbox(id, "dev-a", [first.cursor]);
  assert.notEqual((await digest()).digest, a.digest, "an ack changes the digest");

  // Rate-limit buckets and challenges are sections of their own, which callers may leave out.
  const dataOnly = await storeDigest(target, { include: ["data"] });
  const full = await digest();
  await store.mergeRateBuckets([{ bucket: "abc", taken: 1, level: 9, capacity: 10, refillPerSecond: 1 }], NOW);
  await store.burnChallenge("challenge-1", NOW + 60_000);
  assert.equal((await storeDigest(target, { include: ["data"] })).digest, dataOnly.digest);
  const after = await digest();
  assert.notEqual(after.digest, full.digest);
  const changed = digestChanges(full, after).map(sectionOf).sort();
  assert.deepEqual([...new Set(changed)], ["challenges", "rateLimits"]);
}

describe("storeDigest", { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  let redis: RedisProcess | undefined;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("of SQLite: changes when something is stored, and not on reads, duplicates or conflicts", async () => {
    const dir = await mkdtemp(join(tmpdir(), "testigo-digest-"));
    dirs.push(dir);
    const store = await SqliteStore.open({ dataDir: dir });
    try {
      await scenario(store, { kind: "sqlite", file: join(dir, "relay.sqlite") });
    } finally {
      await store.close();
    }
  });

  it("of Redis: the same, though inbox reads move stream entries to the pending list", async () => {
    assert.ok(redis !== undefined);
    const store = await RedisStore.connect(redis.url);
    try {
      await scenario(store, { kind: "redis", urls: [redis.url] });
    } finally {
      await store.close();
    }
  });

  it("of a Redis Cluster: the same, scanning every master", async () => {
    let cluster: RedisClusterProcess | undefined;
    try {
      cluster = await startRedisCluster({ masters: 3 });
      const store = await RedisStore.cluster(cluster.urls);
      try {
        await scenario(store, { kind: "redis", urls: cluster.urls });
      } finally {
        await store.close();
      }
    } finally {
      await cluster?.stop();
    }
  });

  it("sorts parts into sections by SQLite table and Redis hash tag", () => {
    assert.equal(sectionOf("sqlite:rate_limits"), "rateLimits");
    assert.equal(sectionOf("sqlite:challenges"), "challenges");
    assert.equal(sectionOf("sqlite:sessions"), "sessions");
    assert.equal(sectionOf("sqlite:messages"), "data");
    assert.equal(sectionOf("sqlite:sqlite_sequence"), "sequences");
    assert.equal(sectionOf("redis:testigo:{rl:session:x}"), "rateLimits");
    assert.equal(sectionOf("redis:testigo:{ch:abc}"), "challenges");
    assert.equal(sectionOf("redis:testigo:{s:abc}"), "sessions");
    assert.equal(sectionOf("redis:testigo:{ratesessionchallenge}:env"), "data");
  });
});
