// Every benchmark, in one run: `node bench/dist/index.js` (the root `npm run bench`).
// The election-night replay is separate (`npm run bench:election`): it takes far longer.
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runAndWriteCryptoBench } from "./crypto.js";
import { runAndWriteRelayBench } from "./relay.js";

await runAndWriteCryptoBench();
process.stdout.write(await runAndWriteRelayBench());

// sdk.js runs its benchmark when loaded, so it gets its own process (as `node bench/dist/sdk.js`).
const sdk = spawnSync(process.execPath, [resolve(dirname(fileURLToPath(import.meta.url)), "sdk.js")], {
  stdio: "inherit",
});
if (sdk.status !== 0) process.exitCode = sdk.status ?? 1;
