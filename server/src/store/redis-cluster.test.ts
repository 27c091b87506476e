import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type RedisClusterProcess, startRedisCluster } from "../testing/redis-server.js";
import { runStoreConformance } from "./conformance.js";
import { RedisStore } from "./redis-store.js";

/**
 * Creates enough campaigns that their hash tags land on all three masters, each with one envelope
 * submitted (and accepted) for device "dev-a"; returns their ids.
 */
async function campaignsOnEveryMaster(store: RedisStore): Promise<string[]> {
  const ids = Array.from({ length: 12 }, () => randomBytes(9).toString("base64url"));
  for (const campaignId of ids) {
    await store.createCampaign({
      campaignId,
      rootPublicKey: "root",
      roster: new Uint8Array([1]),
      rosterSerial: 1,
      deviceIds: ["dev-a"],
      deviceSigningKeys: { "dev-a": "k" },
      createdAt: Date.now(),
    });
    assert.equal((await store.submitEnvelope(campaignId, "m", new Uint8Array([7]), Date.now())).status, "accepted");
  }
  return ids;
}

let cluster: RedisClusterProcess | undefined;
before(async () => {
  cluster = await startRedisCluster({ masters: 3 });
});
after(async () => {
  await cluster?.stop();
});

runStoreConformance("RedisStore on a 3-master Redis Cluster", async () => {
  if (cluster === undefined) throw new Error("cluster not started");
  const store = await RedisStore.cluster(cluster.urls, { prefix: `t${randomBytes(4).toString("hex")}:` });
  return { store, cleanup: () => store.close() };
});

describe("RedisStore across cluster nodes", { timeout: 60_000 }, () => {
  it("notifies a node connected through another master, for campaigns on every master", async () => {
    if (cluster === undefined) throw new Error("cluster not started");
    const [first, , last] = cluster.urls;
    assert.ok(first !== undefined && last !== undefined);
    const a = await RedisStore.cluster([first]);
    const b = await RedisStore.cluster([last]);
    try {
      const heard = new Set<string>();
      await b.onInboxAppend((campaignId) => heard.add(campaignId));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const ids = await campaignsOnEveryMaster(a);
      const deadline = Date.now() + 5_000;
      while (heard.size < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual([...heard].sort(), [...ids].sort());
      for (const campaignId of ids) assert.equal((await b.readInbox(campaignId, "dev-a", 10)).length, 1);
      await b.ping();
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("RedisStore on a Redis Cluster with a password", { timeout: 120_000 }, () => {
  it("reaches every master with the URL's credentials, and refuses to start without them", async () => {
    const secured = await startRedisCluster({ masters: 3, password: "cluster-secret-7f3a" });
    try {
      const store = await RedisStore.cluster(secured.urls.slice(0, 1), { connectTimeoutMs: 2_000 });
      try {
        // The masters are discovered, not given: each is reached with the URL's credentials.
        for (const campaignId of await campaignsOnEveryMaster(store)) {
          assert.equal((await store.readInbox(campaignId, "dev-a", 10)).length, 1);
        }
        await store.ping();
      } finally {
        await store.close();
      }
      const withoutPassword = secured.urls.map((url) => url.replace(/\/\/[^@]*@/, "//"));
      await assert.rejects(RedisStore.cluster(withoutPassword, { connectTimeoutMs: 1_000, commandTimeoutMs: 2_000 }));
    } finally {
      await secured.stop();
    }
  });
});
