// Slowloris benchmark: how much do N slow connections (header lines trickled, never finished)
// slow legitimate clients, on the relay and on a bare fastify server with the same timeouts, and
// how long does each keep the slow connections open? Ratios are within one run on one machine.
//
//   node bench/dist/hostile-slowloris.js [--connections 1000] [--requests 200]
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { appConfig, buildApp, createLogger, loadConfig, openStore, readEnv } from "@testigo/server";
import Fastify, { type FastifyInstance } from "fastify";

const TIMEOUTS = { connectionMs: 2_000, requestMs: 3_000, keepAliveMs: 1_000 };
const HEADERS_TIMEOUT_MS = 2_000;
const TRICKLE_MS = 500;
/** Node reaps timed-out requests only every connectionsCheckingInterval (30 s by default). */
const WAIT_FOR_CLOSE_MS = 60_000;

const { values } = parseArgs({
  options: { connections: { type: "string", default: "1000" }, requests: { type: "string", default: "200" } },
});
const CONNECTIONS = Number(values.connections);
const REQUESTS = Number(values.requests);

function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request({ host: "127.0.0.1", port, path: "/healthz", agent: false }, (res) => {
      res.resume();
      res.on("end", () =>
        res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`${res.statusCode}`)),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

async function latencies(port: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < REQUESTS; i++) out.push(await get(port));
  return out;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

async function attack(port: number): Promise<{ sockets: Socket[]; closedAfter: number[]; stop: () => void }> {
  const sockets: Socket[] = [];
  const closedAfter: number[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(s));
      s.once("error", reject);
    });
    const opened = Date.now();
    socket.on("error", () => {});
    socket.on("close", () => closedAfter.push(Date.now() - opened));
    socket.write("GET /healthz HTTP/1.1\r\nHost: bench\r\n");
    sockets.push(socket);
  }
  let line = 0;
  const timer = setInterval(() => {
    line += 1;
    for (const s of sockets) if (!s.destroyed) s.write(`X-Slow-${line}: z\r\n`);
  }, TRICKLE_MS);
  return { sockets, closedAfter, stop: () => clearInterval(timer) };
}

async function run(name: string, app: FastifyInstance): Promise<string> {
  await app.listen({ host: "127.0.0.1", port: 0 });
  app.server.headersTimeout = HEADERS_TIMEOUT_MS;
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const baseline = await latencies(port);
  const { sockets, closedAfter, stop } = await attack(port);
  const underAttack = await latencies(port);
  const deadline = Date.now() + WAIT_FOR_CLOSE_MS;
  while (closedAfter.length < sockets.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  stop();
  for (const s of sockets) s.destroy();
  await app.close();
  const p50 = percentile(baseline, 50);
  const a50 = percentile(underAttack, 50);
  return (
    `| ${name} | ${p50.toFixed(2)} | ${percentile(baseline, 99).toFixed(2)} | ${a50.toFixed(2)} | ` +
    `${percentile(underAttack, 99).toFixed(2)} | ${(a50 / p50).toFixed(2)} | ` +
    `${closedAfter.length}/${sockets.length} | ${percentile(closedAfter, 50).toFixed(0)} | ${percentile(closedAfter, 99).toFixed(0)} |`
  );
}

const bare = Fastify({
  logger: false,
  connectionTimeout: TIMEOUTS.connectionMs,
  requestTimeout: TIMEOUTS.requestMs,
  keepAliveTimeout: TIMEOUTS.keepAliveMs,
});
bare.get("/healthz", async () => ({ status: "ok" }));

const dataDir = mkdtempSync(join(tmpdir(), "testigo-bench-slowloris-"));
const { store } = await openStore(loadConfig({ ...readEnv({}), data: dataDir }));
const relay = buildApp(appConfig({ registrationToken: "bench-slowloris-operator-token-0123456789abcdef" }), {
  store,
  logger: createLogger({ level: "silent" }),
  timeouts: TIMEOUTS,
});

const rows = [await run("bare fastify", bare), await run("relay (SQLite)", relay)];
await store.close();
rmSync(dataDir, { recursive: true, force: true });
console.log(`Slowloris: ${CONNECTIONS} slow connections, ${REQUESTS} sequential GET /healthz before and during.`);
console.log(
  "| server | p50 ms | p99 ms | p50 under attack | p99 under attack | p50 ratio | closed | closed after p50 ms | p99 ms |",
);
console.log("|---|---|---|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
