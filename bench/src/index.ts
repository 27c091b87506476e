// Every benchmark, in one run: `node bench/dist/index.js` (the root `npm run bench`).
// The election-night replay is separate (`npm run bench:election`): it takes far longer.
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runAndWriteCryptoBench } from "./crypto.js";
import { runAndWriteRelayBench } from "./relay.js";

await runAndWriteCryptoBench();
process.stdout.write(await runAndWriteRelayBench());

// The SDK benchmarks run when loaded, so each gets its own process (as `node bench/dist/<name>`).
for (const script of ["sdk-volunteer.js", "sdk.js"]) {
  const run = spawnSync(process.execPath, [resolve(dirname(fileURLToPath(import.meta.url)), script)], {
    stdio: "inherit",
  });
  if (run.status !== 0) process.exitCode = run.status ?? 1;
}
