import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type RedisProcess, startRedis } from "../testing/redis-server.js";
import { runStoreConformance } from "./conformance.js";
import { RedisStore } from "./redis-store.js";
import type { CampaignRecord } from "./store.js";

let shared: RedisProcess | undefined;
before(async () => {
  shared = await startRedis();
});
after(async () => {
  await shared?.stop();
});

runStoreConformance("RedisStore", async () => {
  if (shared === undefined) throw new Error("redis not started");
  const store = await RedisStore.connect(shared.url, { prefix: `t${randomBytes(4).toString("hex")}:` });
  return { store, cleanup: () => store.close() };
});

function campaign(): CampaignRecord {
  return {
    campaignId: randomBytes(9).toString("base64url"),
    rootPublicKey: "root",
    roster: new Uint8Array([1, 2, 3]),
    rosterSerial: 1,
    deviceIds: ["dev-a", "dev-b"],
    deviceSigningKeys: { "dev-a": "ka", "dev-b": "kb" },
    createdAt: Date.now(),
  };
}

/** Retries `attempt` until it resolves, for at most `ms`. */
async function eventually(what: string, attempt: () => Promise<unknown>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (
      await attempt().then(
        () => true,
        () => false,
      )
    )
      return;
    if (Date.now() > deadline) throw new Error(`not ${what} within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("RedisStore on a real redis-server", { timeout: 60_000 }, () => {
  it("keeps everything acknowledged across kill -9 of redis-server (appendonly, appendfsync always)", async () => {
    const redis = await startRedis({ appendonly: true, appendfsync: "always" });
    const store = await RedisStore.connect(redis.url, { commandTimeoutMs: 1_000 });
    try {
      const record = campaign();
      await store.createCampaign(record);
      const sent = new Map<string, Uint8Array>();
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const envelope = new Uint8Array(randomBytes(300 + i));
          const result = await store.submitEnvelope(record.campaignId, `m${i}`, envelope, Date.now());
          if (result.status === "accepted") sent.set(`m${i}`, envelope);
        }),
      );
      assert.equal(sent.size, 50);
      await store.createPhoto(record.campaignId, "p", 2, Date.now());
      const chunk = new Uint8Array(randomBytes(1000));
      await store.putPhotoChunk(record.campaignId, "p", 0, chunk, Date.now());
      await redis.kill9();
      await assert.rejects(store.ping(), { code: "store-unavailable" });
      await redis.restart();
      await eventually("reconnected", () => store.ping());
      const items = await store.readInbox(record.campaignId, "dev-b", 100);
      assert.equal(items.length, 50);
      for (const item of items) {
        assert.ok(item.kind === "envelope");
        assert.deepEqual(item.envelope, sent.get(item.messageId));
      }
      assert.deepEqual(await store.listPhotoChunks(record.campaignId, "p"), [0]);
      assert.deepEqual(await store.putPhotoChunk(record.campaignId, "p", 0, chunk, Date.now()), {
        status: "duplicate",
        complete: false,
      });
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it("two relay nodes on one Redis: a submit on A notifies B", async () => {
    if (shared === undefined) throw new Error("redis not started");
    const a = await RedisStore.connect(shared.url);
    const b = await RedisStore.connect(shared.url);
    try {
      const record = campaign();
      await a.createCampaign(record);
      const heard = new Promise<string>((resolve, reject) => {
        setTimeout(() => reject(new Error("B heard nothing")), 5_000).unref();
        void b.onInboxAppend((campaignId) => {
          if (campaignId === record.campaignId) resolve(campaignId);
        });
      });
      // onInboxAppend resolves once subscribed; give the subscription a round trip to settle.
      await b.ping();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await a.submitEnvelope(record.campaignId, "m1", new Uint8Array([1, 2]), Date.now());
      assert.equal(await heard, record.campaignId);
      // And B reads what A stored.
      const items = await b.readInbox(record.campaignId, "dev-a", 10);
      assert.equal(items.length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("fails fast while Redis is down or frozen, and recovers after restart", async () => {
    const redis = await startRedis({ appendonly: true, appendfsync: "always" });
    const store = await RedisStore.connect(redis.url, { commandTimeoutMs: 500 });
    try {
      const record = campaign();
      await store.createCampaign(record);
      // Frozen server: the connection stays open but nothing answers; commands time out.
      redis.sigstop();
      await assert.rejects(store.ping(), { code: "store-unavailable" });
      await assert.rejects(store.submitEnvelope(record.campaignId, "frozen", new Uint8Array([1]), Date.now()), {
        code: "store-unavailable",
      });
      redis.sigcont();
      await eventually("answering after SIGCONT", () => store.ping());
      // Dead server: commands reject at once instead of queueing.
      await redis.kill9();
      await assert.rejects(store.ping(), { code: "store-unavailable" });
      await assert.rejects(store.submitEnvelope(record.campaignId, "down", new Uint8Array([1]), Date.now()), {
        code: "store-unavailable",
      });
      await assert.rejects(store.readInbox(record.campaignId, "dev-a", 10), { code: "store-unavailable" });
      await redis.restart();
      await eventually("reconnected", () => store.ping());
      const result = await store.submitEnvelope(record.campaignId, "after", new Uint8Array([2]), Date.now());
      assert.equal(result.status, "accepted");
      const ids = (await store.readInbox(record.campaignId, "dev-a", 10)).map((item) =>
        item.kind === "envelope" ? item.messageId : item.photoId,
      );
      // "frozen" may or may not have been executed (a timeout does not say); "after" is there.
      assert.ok(ids.includes("after"));
      assert.ok(!ids.includes("down"));
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it("refuses to connect to a port where nothing listens, without hanging", async () => {
    await assert.rejects(RedisStore.connect("redis://127.0.0.1:1", { commandTimeoutMs: 1_000 }));
  });
});
