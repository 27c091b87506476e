// Test harness: real redis-server processes on free loopback ports, each with its own temporary
// data folder. Never touches the system Redis on 6379. Used by the store tests and by the
// cross-package tests (exported as "@testigo/server/testing").
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export * from "./store-digest.js";

const run = promisify(execFile);
const START_TIMEOUT_MS = 10_000;

export interface RedisOptions {
  /** Append-only file: the durability the Redis backend's guarantees are stated for. */
  readonly appendonly?: boolean;
  readonly appendfsync?: "always" | "everysec" | "no";
  readonly password?: string;
  /** RDB snapshots: off unless asked (`--save ""`). */
  readonly save?: string;
}

export interface RedisProcess {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Process id of the current redis-server (changes after `restart()`). */
  readonly pid: number;
  /** Graceful shutdown, then removes the data folder. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown, no final fsync. The data folder stays for `restart()`. */
  kill9(): Promise<void>;
  /** Starts again on the same port and data folder (stopping the running one first if any). */
  restart(): Promise<void>;
  /** Freezes the process: connections stay open but nothing answers. */
  sigstop(): void;
  sigcont(): void;
}

/** A free loopback TCP port: bind port 0, read the port, close. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("freePort: no port"))));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

async function cli(port: number, password: string | undefined, args: readonly string[]): Promise<string> {
  const auth = password === undefined ? [] : ["-a", password, "--no-auth-warning"];
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...auth, ...args], {
    timeout: 5_000,
  });
  return stdout.trim();
}

async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`redis harness: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Servers still running when the test process exits (a cancelled test skips its cleanup)
// are killed, so no redis-server outlives its test run.
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

function spawnRedis(args: readonly string[]): ChildProcess {
  const child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.resume();
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisProcess> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "testigo-redis-"));
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    options.save ?? "",
    "--appendonly",
    options.appendonly === true ? "yes" : "no",
    "--appendfsync",
    options.appendfsync ?? "everysec",
    "--daemonize",
    "no",
    "--logfile",
    "",
    ...(options.password === undefined ? [] : ["--requirepass", options.password]),
  ];
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const started = spawnRedis(args);
    child = started;
    await waitUntil(`redis-server on port ${port}`, async () => {
      if (started.exitCode !== null) throw new Error("redis-server exited");
      return (await cli(port, options.password, ["ping"])) === "PONG";
    });
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const current = child;
    child = undefined;
    if (current === undefined) return;
    if (signal === "SIGTERM") current.kill("SIGCONT");
    current.kill(signal);
    await exited(current);
  };

  await start();
  const auth = options.password === undefined ? "" : `:${encodeURIComponent(options.password)}@`;
  return {
    url: `redis://${auth}127.0.0.1:${port}`,
    port,
    dir,
    get pid(): number {
      return child?.pid ?? -1;
    },
    async stop() {
      await halt("SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
    async kill9() {
      await halt("SIGKILL");
    },
    async restart() {
      await halt("SIGTERM");
      await start();
    },
    sigstop() {
      child?.kill("SIGSTOP");
    },
    sigcont() {
      child?.kill("SIGCONT");
    },
  };
}

export interface RedisClusterProcess {
  /** One redis:// URL per master. */
  readonly urls: readonly string[];
  stop(): Promise<void>;
}

/** A real Redis Cluster of `masters` masters and no replicas, on loopback. */
export async function startRedisCluster(
  options: { masters?: number; password?: string } = {},
): Promise<RedisClusterProcess> {
  const masters = options.masters ?? 3;
  const { password } = options;
  // requirepass for clients, masterauth for the nodes' own links (replication, redis-cli --cluster).
  const authArgs = password === undefined ? [] : ["--requirepass", password, "--masterauth", password];
  const nodes: { port: number; dir: string; child: ChildProcess }[] = [];
  const stop = async (): Promise<void> => {
    for (const node of nodes) {
      node.child.kill("SIGCONT");
      node.child.kill("SIGTERM");
      await exited(node.child);
      await rm(node.dir, { recursive: true, force: true });
    }
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      // cluster-port (Redis 7): the bus gets its own free port instead of port + 10000.
      const busPort = await freePort();
      const dir = await mkdtemp(join(tmpdir(), "testigo-redis-cluster-"));
      const child = spawnRedis([
        "--port",
        String(port),
        "--cluster-port",
        String(busPort),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, "nodes.conf"),
        "--daemonize",
        "no",
        "--logfile",
        "",
        ...authArgs,
      ]);
      nodes.push({ port, dir, child });
      await waitUntil(`cluster node on port ${port}`, async () => {
        if (child.exitCode !== null) throw new Error("redis-server exited");
        return (await cli(port, password, ["ping"])) === "PONG";
      });
    }
    await run(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
        ...(password === undefined ? [] : ["-a", password, "--no-auth-warning"]),
      ],
      { timeout: 30_000 },
    );
    for (const node of nodes) {
      await waitUntil("cluster_state:ok", async () =>
        (await cli(node.port, password, ["cluster", "info"])).includes("cluster_state:ok"),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const auth = password === undefined ? "" : `:${encodeURIComponent(password)}@`;
  return { urls: nodes.map((node) => `redis://${auth}127.0.0.1:${node.port}`), stop };
}
