// `testigo relay` takes the same flags as the relay itself (server/src/run-relay.ts).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli } from "./coordinator-test-cli.js";

describe("testigo relay", { timeout: 60_000 }, () => {
  it("accepts the coordinator-quota flags and checks their values", async () => {
    const dir = mkdtempSync(join(tmpdir(), "testigo-relay-cli-"));
    try {
      for (const flag of ["--coordinator-rate-capacity", "--coordinator-rate-refill-per-second"]) {
        // An invalid value: the relay must refuse it by name (not the CLI refuse an unknown flag).
        const run = await runCli(["relay", "--data", dir, "--port", "0", `${flag}=-3`]);
        assert.notEqual(run.code, 0);
        assert.match(run.stderr, new RegExp(`${flag} / TESTIGO_COORDINATOR_RATE_`), run.stderr);
        assert.doesNotMatch(run.stderr, /unknown (flag|option)/i, run.stderr);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lists them in its help", async () => {
    const run = await runCli(["relay", "--help"]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /--coordinator-rate-capacity/);
    assert.match(run.stdout, /TESTIGO_RATE_CAPACITY/);
  });
});
