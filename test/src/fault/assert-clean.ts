// What every short fault run must end with: something acknowledged, and nothing acknowledged lost,
// duplicated, reordered, damaged or refused; no quarantined file and no harness problem.
import assert from "node:assert/strict";
import type { ScenarioResult } from "./harness.js";

export function assertNothingLost(result: ScenarioResult): void {
  assert.ok(result.report.acknowledged > 0, result.text);
  assert.deepEqual(result.report.lost, [], result.text);
  assert.deepEqual(result.report.duplicated, [], result.text);
  assert.deepEqual(result.report.reordered, [], result.text);
  assert.deepEqual(result.report.damaged, [], result.text);
  assert.deepEqual(result.report.refused, [], result.text);
  assert.equal(result.quarantined, 0, result.text);
  assert.deepEqual(result.problems, [], result.text);
}
