// The checker can fail: with Redis's append-only file off, reports the relay acknowledged after the
// last snapshot are gone after a kill -9 of redis-server, and the checker must count every one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runLossScenario } from "./harness.js";

const VOLUNTEERS = 2;
const REPORTS = 4;

describe("the queue checker detects a loss", () => {
  it("reports lost > 0 after kill -9 of a Redis without an append-only file", { timeout: 300_000 }, async (t) => {
    const result = await runLossScenario({ volunteers: VOLUNTEERS, reports: REPORTS });
    for (const line of result.text.split("\n")) t.diagnostic(line);
    const { report } = result;
    assert.equal(report.acknowledged, VOLUNTEERS * REPORTS, "every report was acknowledged before the kill");
    assert.equal(report.lost.length, report.acknowledged, "everything acknowledged after the snapshot is lost");
    assert.equal(report.ok, false);
    assert.match(result.text, /queue checker: FAIL/);
    assert.match(result.text, new RegExp(`lost ${VOLUNTEERS * REPORTS},`));
  });
});
