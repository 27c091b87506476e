// A short seeded fault run on 1 relay on the embedded SQLite store: an injected write (fsync)
// failure — /readyz must turn 503 and stay so until the relay restarts, and nothing may be
// acknowledged that the failed write lost — plus 2 more faults drawn from the seed (kill -9 of
// the relay, of a fetch, of a volunteer mid-upload), then the queue checker.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertNothingLost } from "./assert-clean.js";
import { runFaultScenario } from "./harness.js";
import { seedFrom } from "./prng.js";

describe("fault injection: 1 relay on SQLite", () => {
  it("fails closed on a write error and loses nothing acknowledged under 3 seeded faults", {
    timeout: 600_000,
  }, async (t) => {
    const seed = seedFrom(process.env.FAULT_SEED);
    t.diagnostic(`fault seed ${seed} (replay: FAULT_SEED=${seed})`);
    const result = await runFaultScenario({
      mode: "sqlite",
      seed,
      faults: 3,
      include: ["sqlite-write-fault"],
      loadMs: 10_000,
      volunteers: 2,
    });
    for (const line of result.text.split("\n")) t.diagnostic(line);
    const writeFaults = result.faults.filter((f) => f.kind === "sqlite-write-fault");
    assert.ok(writeFaults.length >= 1, result.text);
    for (const fault of writeFaults) {
      assert.equal(fault.acceptedAfterFailure, 0, `nothing accepted after the failed write\n${result.text}`);
      assert.equal(fault.readyzRed, true, `/readyz turned 503 after the failed write\n${result.text}`);
      assert.equal(fault.readyzGreenAfterRestart, true, `/readyz is 200 after the restart\n${result.text}`);
    }
    assertNothingLost(result);
  });
});
