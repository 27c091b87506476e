// `npm run test:faults`: a long seeded fault run with the queue checker (test/src/fault/README.md).
// Settings from the environment: FAULT_SEED (replay), FAULT_MODE (redis | sqlite | both),
// FAULT_DURATION_S (load per mode), FAULT_COUNT (faults per mode), FAULT_VOLUNTEERS.
// Exits 1 when the checker finds a loss, a duplicate, a reordering or a damaged photo.
import type { FaultKind } from "./faults.js";
import { runFaultScenario, type StackMode } from "./harness.js";
import { seedFrom } from "./prng.js";

function integer(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

const seed = seedFrom(process.env.FAULT_SEED);
const modeText = process.env.FAULT_MODE ?? "both";
if (!["redis", "sqlite", "both"].includes(modeText)) {
  throw new Error(`FAULT_MODE must be redis, sqlite or both, got ${JSON.stringify(modeText)}`);
}
const modes: StackMode[] = modeText === "both" ? ["redis", "sqlite"] : [modeText as StackMode];
const loadMs = integer("FAULT_DURATION_S", 120, 5, 86_400) * 1000;
const faults = integer("FAULT_COUNT", 12, 0, 10_000);
const volunteers = integer("FAULT_VOLUNTEERS", 6, 1, 200);

let failed = false;
for (const mode of modes) {
  const include: FaultKind[] = mode === "sqlite" && faults > 0 ? ["sqlite-write-fault"] : [];
  const result = await runFaultScenario({
    mode,
    seed,
    faults,
    include,
    loadMs,
    volunteers,
    keepWork: process.env.FAULT_KEEP === "1",
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\n${result.text}\n\n`);
  if (result.work !== undefined) process.stdout.write(`work folder kept: ${result.work}\n`);
  const writeFaultsOk = result.faults
    .filter((f) => f.kind === "sqlite-write-fault")
    .every((f) => f.acceptedAfterFailure === 0 && f.readyzRed === true && f.readyzGreenAfterRestart === true);
  if (!result.report.ok || result.quarantined > 0 || result.problems.length > 0 || !writeFaultsOk) failed = true;
}
process.exitCode = failed ? 1 : 0;
