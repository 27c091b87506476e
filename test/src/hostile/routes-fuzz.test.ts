// Fuzzes EVERY route of `API` with hostile requests against a real relay on a real SQLite store,
// then a smaller run on a real redis-server. Seeded: FC_SEED=<n> replays a run; HOSTILE_FUZZ_RUNS
// sets the runs per route (default 25 on SQLite, a quarter of that on Redis).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { API, type ApiRouteName } from "@testigo/protocol";
import { assertAnswering, fuzzRoute, newTally, summary } from "./fuzz-check.js";
import { envCount, fuzzSeed, type HostileRelay, onSqliteAndRedis, prototypeKeys } from "./harness.js";
import { FORWARDED_FOR, routeArbitraries } from "./route-arbitraries.js";
import { buildWorld, type World } from "./world.js";

const RUNS = envCount("HOSTILE_FUZZ_RUNS", 25);
const SEED = fuzzSeed("routes-fuzz");
/** Large enough that the fuzz never meets a 429 (which would hide what it sends). */
const NO_RATE_LIMIT = { rateLimit: { capacity: 1_000_000_000, refillPerSecond: 1_000_000 } };

const routeNames = Object.keys(API) as ApiRouteName[];

function fuzzEveryRoute(name: string, runs: number, start: () => Promise<HostileRelay>): void {
  describe(name, { timeout: 60_000 + runs * 3_000 }, () => {
    let relay: HostileRelay | undefined;
    let world: World | undefined;
    const tally = newTally();
    const proto = prototypeKeys();
    before(async () => {
      relay = await start();
      world = await buildWorld(relay);
    });
    after(async () => {
      console.log(`${name}: ${summary(tally)}`);
      await relay?.close();
    });

    it("has a hostile-input arbitrary for every route of API, and no other", () => {
      assert.ok(world !== undefined);
      assert.deepEqual(Object.keys(routeArbitraries(world)).sort(), [...routeNames].sort());
    });

    for (const route of routeNames) {
      it(`${API[route].method} ${API[route].path}: refuses hostile input with a documented 4xx and changes nothing`, async () => {
        assert.ok(world !== undefined);
        const arbitrary = routeArbitraries(world)[route];
        assert.ok(arbitrary !== undefined, `no arbitrary for route ${route}`);
        await fuzzRoute(world, arbitrary, { seed: SEED, numRuns: runs }, tally);
      });
    }

    it("still answers, and Object.prototype is as it was", async () => {
      assert.ok(world !== undefined);
      await assertAnswering(world);
      assert.equal(prototypeKeys(), proto);
    });

    it("logged no client address: neither the connection's nor a forwarded one", () => {
      assert.ok(relay !== undefined);
      const logs = relay.logs.join("");
      assert.ok(logs.length > 0, "the relay logged the fuzzed requests");
      for (const address of [FORWARDED_FOR, "127.0.0.1"]) {
        assert.equal(logs.includes(address), false, `the relay logged ${address}`);
      }
    });
  });
}

onSqliteAndRedis(
  (store, start) =>
    fuzzEveryRoute(
      `hostile requests on ${store}`,
      store === "SQLite" ? RUNS : Math.max(5, Math.round(RUNS / 4)),
      start,
    ),
  NO_RATE_LIMIT,
);
