// Runs every compiled test file (*.test.js under <package>/dist) with node's built-in runner.
// Node 20's --test does not expand globs, so this script finds the files.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const packages = ["protocol", "server", "client-sdk", "test", "bench"];
const filter = process.argv.slice(2);

function findTests(dir) {
  let found = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return found;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found = found.concat(findTests(path));
    else if (name.endsWith(".test.js")) found.push(path);
  }
  return found;
}

const files = packages
  .flatMap((pkg) => findTests(join(root, pkg, "dist")))
  .map((file) => relative(root, file))
  .filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)))
  .sort();

if (files.length === 0) {
  console.error("run-tests: no test files found (did `npm run build` run?)");
  process.exit(1);
}

const reporter = process.stdout.isTTY ? "spec" : "tap";
// A hung test must fail, not eat CI's time budget: no single test legitimately runs 10 minutes.
const TEST_TIMEOUT_MS = 10 * 60 * 1000;
const result = spawnSync(
  process.execPath,
  ["--test", `--test-reporter=${reporter}`, "--test-concurrency=2", `--test-timeout=${TEST_TIMEOUT_MS}`, ...files],
  { cwd: root, stdio: "inherit" },
);
process.exit(result.status ?? 1);
