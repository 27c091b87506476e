// The real entry point as a child process: start-up message, /readyz, token file, SIGTERM → exit 0.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));
const dirs: string[] = [];

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "testigo-main-"));
  dirs.push(dir);
  return dir;
}

/** Environment without any TESTIGO_* variable of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("TESTIGO_")) env[key] = value;
  return { ...env, ...extra };
}

function waitFor(output: () => string, pattern: RegExp, child: ReturnType<typeof spawn>): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const match = output().match(pattern);
      if (match !== null) {
        clearInterval(timer);
        resolve(match);
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`relay exited early (${child.exitCode}): ${output()}`));
      }
    }, 20);
  });
}

describe("testigo relay (main.js)", () => {
  it("starts on the embedded store, says where, serves /readyz, and exits 0 on SIGTERM", async () => {
    const data = join(tempDir(), "data");
    const child = spawn(process.execPath, [MAIN, "--port", "0", "--data", data], {
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += String(chunk);
    });
    child.stderr.on("data", (chunk) => {
      stderr += String(chunk);
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const [, url] = await waitFor(() => stdout, /listening on (http:\/\/127\.0\.0\.1:\d+)/, child);
    await waitFor(() => stdout, /registration token: .*registration-token/, child);
    assert.match(stdout, /store: embedded SQLite in .*data/);

    const tokenFile = join(data, "registration-token");
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    assert.match(readFileSync(tokenFile, "utf8").trim(), /^[A-Za-z0-9_-]{43}$/);

    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);

    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /stopped/);
    // Logs went to stdout too: the token never appears in them.
    assert.equal(stdout.includes(readFileSync(tokenFile, "utf8").trim()), false);
  });

  it("keeps the token file across restarts and uses TESTIGO_RELAY_TOKEN when given", async () => {
    const data = tempDir();
    const token = "t".repeat(40);
    const child = spawn(process.execPath, [MAIN, "--port", "0", "--data", data], {
      env: cleanEnv({ TESTIGO_RELAY_TOKEN: token }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += String(chunk);
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await waitFor(() => stdout, /registration token: from TESTIGO_RELAY_TOKEN/, child);
    child.kill("SIGINT");
    assert.equal(await exited, 0);
  });

  it("refuses bad configuration with a clear message and exit code 2", async () => {
    const child = spawn(process.execPath, [MAIN, "--port", "http", "--redis", "mysql://x"], {
      env: cleanEnv({ TESTIGO_RATE_CAPACITY: "-3" }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += String(chunk);
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    assert.equal(code, 2);
    assert.match(stderr, /--port \/ TESTIGO_PORT: must be a whole number \(got "http"\)/);
    assert.match(stderr, /--redis \/ TESTIGO_REDIS: must be a redis:\/\/ or rediss:\/\/ URL/);
    assert.match(stderr, /TESTIGO_RATE_CAPACITY: must be a whole number/);
  });
});
