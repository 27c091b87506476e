// A short seeded fault run on 2 relay nodes over one Redis (AOF, appendfsync always): 3 faults
// drawn from the seed (kill -9 of a relay, of redis-server, of a fetch, of a volunteer mid-upload,
// SIGSTOP of Redis, a relay restarted while volunteers fail over), then the queue checker.
// FAULT_SEED=N replays a run's plan; `npm run test:faults` is the long run.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertNothingLost } from "./assert-clean.js";
import { runFaultScenario } from "./harness.js";
import { seedFrom } from "./prng.js";

describe("fault injection: 2 relay nodes on Redis", () => {
  it("loses, duplicates and reorders nothing acknowledged under 3 seeded faults", { timeout: 600_000 }, async (t) => {
    const seed = seedFrom(process.env.FAULT_SEED);
    t.diagnostic(`fault seed ${seed} (replay: FAULT_SEED=${seed})`);
    const result = await runFaultScenario({ mode: "redis", seed, faults: 3, loadMs: 10_000, volunteers: 2 });
    for (const line of result.text.split("\n")) t.diagnostic(line);
    assert.equal(result.faults.length, 3, result.text);
    assertNothingLost(result);
  });
});
