import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initSodium } from "@testigo/protocol";
import Database from "better-sqlite3";
import { createLogger } from "./logger.js";
import { RateLimiter } from "./rate-limiter.js";
import { bucketName, RelayKeyring } from "./relay-keys.js";
import { RedisStore } from "./store/redis-store.js";
import { SqliteStore } from "./store/sqlite-store.js";
import type { Store } from "./store/store.js";
import { type RedisProcess, startRedis } from "./testing/redis-server.js";

const INTERVAL = 10_000;
// A merge time in the middle of an interval, so stored times are visibly rounded up.
const T0 = Math.floor(Date.now() / INTERVAL) * INTERVAL + 4_000;
const NAME = "cred:campaign:volunteer:v-0123456789ABCDEF";

const dirs: string[] = [];
let redis: RedisProcess | undefined;
before(async () => {
  await initSodium();
});
after(async () => {
  await redis?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "testigo-limiter-"));
  dirs.push(dir);
  return dir;
}

function limiterOn(store: Store, clock: { now: number }): { limiter: RateLimiter; keys: RelayKeyring } {
  const keys = new RelayKeyring(store);
  const limiter = new RateLimiter({
    store,
    keys,
    clock: () => clock.now,
    logger: createLogger({ level: "silent" }),
    intervalMs: INTERVAL,
  });
  return { limiter, keys };
}

async function takeMany(limiter: RateLimiter, count: number, capacity = 5, refill = 1): Promise<number> {
  const results = await Promise.all(Array.from({ length: count }, () => limiter.take(NAME, capacity, refill)));
  return results.filter((result) => result.allowed).length;
}

describe("RateLimiter (in memory, merged into the store per interval)", { timeout: 60_000 }, () => {
  it("gives a flood from one credential on one node exactly its quota, and stores only a keyed hash", async () => {
    const dir = await tempDir();
    const store = await SqliteStore.open({ dataDir: dir });
    const clock = { now: T0 };
    const { limiter, keys } = limiterOn(store, clock);
    try {
      assert.equal(await takeMany(limiter, 12), 5);
      const refused = await limiter.take(NAME, 5, 1);
      assert.deepEqual(refused, { allowed: false, retryAfterMs: 1_000 });
      clock.now += 2_000;
      assert.equal(await takeMany(limiter, 5), 2, "refills at its rate, exactly");
      await limiter.merge();
      const db = new Database(join(dir, "relay.sqlite"), { readonly: true });
      const rows = db.prepare("SELECT bucket, tokens, at FROM rate_buckets").all() as {
        bucket: string;
        tokens: number;
        at: number;
      }[];
      db.close();
      const stored = bucketName(await keys.get(), NAME);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.bucket, stored);
      assert.ok(!stored.includes("v-0123456789ABCDEF") && stored.length === 22);
      // Referred to the merge time rounded down to the interval (6 s earlier): 0 now is -6 then.
      assert.equal(rows[0]?.at, Math.floor(clock.now / INTERVAL) * INTERVAL);
      assert.equal(rows[0]?.tokens, -6);
    } finally {
      await store.close();
    }
  });

  it("still holds after a restart: the stored level is restored", async () => {
    const dir = await tempDir();
    const clock = { now: T0 };
    const first = await SqliteStore.open({ dataDir: dir });
    const a = limiterOn(first, clock).limiter;
    assert.equal(await takeMany(a, 10), 5);
    await a.stop(); // the shutdown merge
    await first.close();
    const second = await SqliteStore.open({ dataDir: dir });
    try {
      const b = limiterOn(second, clock).limiter;
      clock.now += 500;
      assert.equal(await takeMany(b, 3), 0, "nothing left after the restart");
      clock.now = T0 + 2_000;
      assert.equal(await takeMany(b, 5), 2, "refilled at the stored rate, exactly as if never restarted");
    } finally {
      await second.close();
    }
  });

  it("never writes a credential that used little: it is full again by the merge", async () => {
    const dir = await tempDir();
    const store = await SqliteStore.open({ dataDir: dir });
    const clock = { now: T0 };
    const { limiter } = limiterOn(store, clock);
    try {
      assert.equal(await takeMany(limiter, 3, 100, 10), 3);
      clock.now += 300; // three requests at 10 tokens/s: full again after 0.3 s
      await limiter.merge();
      assert.deepEqual(await store.mergeRateBuckets([], clock.now), []);
    } finally {
      await store.close();
    }
  });

  it("shares levels between nodes on one Redis at each merge", async () => {
    redis ??= await startRedis();
    const prefix = `rl${Date.now()}:`;
    const storeA = await RedisStore.connect(redis.url, { prefix });
    const storeB = await RedisStore.connect(redis.url, { prefix });
    const clock = { now: T0 };
    try {
      const a = limiterOn(storeA, clock);
      const b = limiterOn(storeB, clock);
      await b.limiter.restore();
      assert.equal(await takeMany(a.limiter, 8), 5);
      assert.equal(await takeMany(b.limiter, 1), 1, "before a merge, each node counts alone");
      await a.limiter.merge();
      await b.limiter.merge();
      assert.equal(await takeMany(b.limiter, 3), 0, "after the merges, B knows what A let through");
      await a.limiter.merge();
      assert.equal(await takeMany(a.limiter, 3), 0, "and A what B let through");
      assert.deepEqual(bucketName(await a.keys.get(), NAME), bucketName(await b.keys.get(), NAME));
    } finally {
      await storeA.close();
      await storeB.close();
    }
  });
});
