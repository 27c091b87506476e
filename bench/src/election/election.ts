// The election-night benchmark (issue 6): `npm run bench:election [-- --scale full ...]`.
//
// One run, on this machine: Redis (AOF, appendfsync always), two real relay processes
// (`server/dist/main.js --redis URL`, what `testigo relay --redis URL` runs) on it, three
// coordinator devices in their own processes draining the inbox continuously with the SDK, and
// volunteers simulated in a few worker processes with the SDK (enrolled by invite first, timed
// apart; then the night). In the same run, the bare stack is measured with the relay benchmark's
// baselines: a bare fastify route with zod, and a loopback TCP transfer. Not a test: nothing here
// asserts; the figures, goals and "met / NOT met" go to bench/results/election.{md,svg}.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  type RelayProcess,
  realActaNames,
  SHARED_ACTAS_DIR,
  startRelay,
  syntheticActa,
} from "@testigo/client-sdk/testing";
import { campaignIdFromRootKey, generateSigningKeyPair, initSodium } from "@testigo/protocol";
import { startRedis } from "@testigo/server/testing";
import type { LoadJob, LoadResult } from "../relay-load.js";
import { startBareRoute, startTcpSink } from "../relay-setup.js";
import { Child, cpuSeconds, peakRss } from "./child.js";
import {
  type Accepted,
  type CoordinatorCounters,
  type CoordinatorStats,
  clock,
  type EnrollStats,
  type FromCoordinator,
  type FromWorker,
  type NightStats,
  sleep,
  type ToCoordinator,
  type ToWorker,
} from "./messages.js";
import { type ElectionOptions, parseOptions } from "./options.js";
import { type ElectionResults, keepRunsRecorded, markdownReport, svgChart } from "./report.js";

const run = promisify(execFile);
const sum = (values: readonly number[]) => values.reduce((s, v) => s + v, 0);
const HERE = dirname(fileURLToPath(import.meta.url));
const LOAD = join(HERE, "..", "relay-load.js");
const COORDINATORS = 3;
const RELAY_NODES = 2;
/** The relay's per-session token bucket, raised so that it is not what is measured (see the report). */
const RATE_LIMIT = "1000000";
const BARE_REQUESTS = 20_000;
const BARE_CONCURRENCY = 64;
const TCP_BYTES = 512 * 1024 * 1024;

type Coordinator = Child<ToCoordinator, FromCoordinator>;
type Worker = Child<ToWorker, FromWorker>;

async function load(job: LoadJob): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, [LOAD, JSON.stringify(job)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

/** The bare stack, measured now on this machine with the relay benchmark's own baselines. */
async function bareStack(): Promise<{ route: LoadResult; tcp: LoadResult; concurrency: number }> {
  const campaignId = campaignIdFromRootKey(generateSigningKeyPair().publicKey);
  const bare = await startBareRoute();
  const sink = await startTcpSink();
  try {
    const job = (count: number): LoadJob => ({
      kind: "envelopes",
      url: `${bare.url}/bare/${campaignId}/envelopes`,
      campaignId,
      tokens: ["bare"],
      count,
      concurrency: BARE_CONCURRENCY,
    });
    await load(job(2_000));
    const route = await load(job(BARE_REQUESTS));
    const tcp = await load({ kind: "tcp", port: sink.port, bytes: TCP_BYTES });
    return { route, tcp, concurrency: BARE_CONCURRENCY };
  } finally {
    await bare.close();
    await sink.close();
  }
}

async function redisMemory(port: number): Promise<{ used: number; peak: number }> {
  const { stdout } = await run("redis-cli", ["-p", String(port), "info", "memory"]);
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(stdout)?.[1] ?? Number.NaN);
  return { used: field("used_memory"), peak: field("used_memory_peak") };
}

/** HTTP requests each relay node has answered so far, by "METHOD route" (its /metrics, which it leaves out). */
async function relayRequests(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`);
  const text = await response.text();
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^testigo_http_requests_total\{method="(\w+)",route="([^"]*)",[^}]*\} (\d+)$/gm)) {
    const key = `${match[1]} ${match[2]}`;
    if (match[2] === "/metrics") continue;
    counts.set(key, (counts.get(key) ?? 0) + Number(match[3]));
  }
  return counts;
}

/** `after − before`, per key. */
function countsSince(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta !== 0) out.set(key, delta);
  }
  return out;
}

/** The acta photos as files: the real scans when present, else synthetic ones in a temp folder. */
function photoFiles(): { files: string[]; real: boolean; cleanup: () => void } {
  const names = realActaNames();
  if (names.length > 0) return { files: names.map((n) => join(SHARED_ACTAS_DIR, n)), real: true, cleanup: () => {} };
  const dir = mkdtempSync(join(tmpdir(), "testigo-election-photos-"));
  const files = Array.from({ length: 16 }, (_, i) => {
    const file = join(dir, `synthetic-${i}.jpg`);
    writeFileSync(file, syntheticActa(300_000).bytes);
    return file;
  });
  return { files, real: false, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Which device wrote which id when; and which accepted ids every device still lacks. */
class Ledger {
  readonly accepted = new Map<string, Accepted>();
  readonly written: Map<string, number>[] = Array.from({ length: COORDINATORS }, () => new Map());
  duplicates = 0;
  lastProgress = clock();

  accept(items: readonly Accepted[]): void {
    for (const item of items) {
      if (this.accepted.has(item.id)) this.duplicates++;
      this.accepted.set(item.id, item);
    }
  }

  write(device: number, lines: readonly { id: string; at: number }[]): void {
    const map = this.written[device] as Map<string, number>;
    for (const line of lines) {
      if (map.has(line.id)) this.duplicates++;
      else map.set(line.id, line.at);
    }
    this.lastProgress = clock();
  }

  /** (item, device) pairs accepted by the relay and not yet written by that device. */
  missing(filter: (item: Accepted) => boolean = () => true): number {
    let missing = 0;
    for (const item of this.accepted.values()) {
      if (!filter(item)) continue;
      for (const map of this.written) if (!map.has(item.id)) missing++;
    }
    return missing;
  }
}

async function waitUntil(
  what: string,
  done: () => boolean,
  children: readonly { check(): void }[],
  idleLimitMs: number,
  lastProgress: () => number,
): Promise<boolean> {
  for (;;) {
    for (const child of children) child.check();
    if (done()) return true;
    if (clock() - lastProgress() > idleLimitMs) {
      process.stderr.write(`gave up waiting for ${what}: no progress in ${idleLimitMs} ms\n`);
      return false;
    }
    await sleep(200);
  }
}

export async function runElection(options: ElectionOptions): Promise<ElectionResults> {
  await initSodium();
  const photos = photoFiles();
  const log = (line: string) => process.stderr.write(`[election] ${line}\n`);
  log(`bare stack: fastify + zod route (${BARE_REQUESTS} requests), loopback TCP (${TCP_BYTES >> 20} MiB)`);
  const bare = await bareStack();

  const redis = await startRedis({ appendonly: true, appendfsync: "always" });
  const relays: RelayProcess[] = [];
  const coordinators: Coordinator[] = [];
  const workers: Worker[] = [];
  const ledger = new Ledger();
  try {
    const env = {
      TESTIGO_LOG_LEVEL: "warn",
      TESTIGO_RATE_CAPACITY: RATE_LIMIT,
      TESTIGO_RATE_REFILL_PER_SECOND: RATE_LIMIT,
    };
    const first = await startRelay({ args: ["--redis", redis.url], env });
    relays.push(first);
    for (let i = 1; i < RELAY_NODES; i++) {
      relays.push(await startRelay({ args: ["--redis", redis.url], env, token: first.token }));
    }
    const nodes = relays.map((r) => r.url);
    const relayUrl = first.url;
    log(`redis on port ${redis.port}, relay nodes on ports ${relays.map((r) => r.port).join(", ")}`);

    for (let i = 0; i < COORDINATORS; i++) {
      const child: Coordinator = new Child(`coordinator ${i}`, join(HERE, "coordinator-process.js"));
      child.on("written", (m) => ledger.write(i, m.lines));
      coordinators.push(child);
      await child.request(
        {
          type: "start",
          index: i,
          nodeUrl: nodes[i % nodes.length] as string,
          relayUrl,
          operatorToken: first.token,
          photoFiles: photos.files,
        },
        "ready",
      );
    }
    const [root, ...others] = coordinators as [Coordinator, ...Coordinator[]];
    const { campaignId } = await root.request({ type: "init" }, "initialised");
    for (const other of others) {
      const { request } = await other.request({ type: "join-request" }, "join-request");
      const { bundle } = await root.request({ type: "add-device", request }, "bundle");
      await other.request({ type: "complete-join", bundle }, "joined");
    }
    const { codes } = await root.request({ type: "mint", count: options.volunteers }, "invites");
    log(`campaign ${campaignId.slice(0, 8)}…: ${COORDINATORS} coordinator devices, ${codes.length} invites`);
    for (const c of coordinators) c.send({ type: "drain", mode: options.coordinatorMode });

    for (let w = 0; w < options.workers; w++) {
      const child: Worker = new Child(`volunteer worker ${w}`, join(HERE, "volunteer-worker.js"));
      child.on("accepted", (m) => ledger.accept(m.items));
      workers.push(child);
      await child.request(
        {
          type: "start",
          worker: w,
          seed: options.seed,
          codes: codes.filter((_, i) => i % options.workers === w),
          nodes,
          relayUrl,
          reportsPerVolunteer: options.reportsPerVolunteer,
          concurrency: options.concurrency,
          dropFraction: options.dropFraction,
          outageMs: options.outageMs,
          photoFiles: photos.files,
        },
        "ready",
      );
    }
    const everyone = [...coordinators, ...workers];

    // Enrollment, timed apart from the night: until every coordinator device registered everyone.
    log(`enrolling ${options.volunteers} volunteers`);
    const enrollStart = clock();
    const enrolled = await Promise.all(workers.map((w) => w.request({ type: "enroll" }, "enrolled")));
    const enrollSent = clock();
    ledger.lastProgress = clock();
    await waitUntil(
      "the enrollments",
      () => ledger.missing() === 0,
      everyone,
      options.drainTimeoutMs,
      () => ledger.lastProgress,
    );
    const enrollEnd = clock();
    const enrollStats: EnrollStats = {
      enrolled: enrolled.reduce((s, e) => s + e.stats.enrolled, 0),
      retried: enrolled.reduce((s, e) => s + e.stats.retried, 0),
      failed: enrolled.reduce((s, e) => s + e.stats.failed, 0),
      msSorted: enrolled.flatMap((e) => e.stats.msSorted).sort((a, b) => a - b),
    };
    log(`enrolled in ${((enrollEnd - enrollStart) / 1000).toFixed(1)} s; the night starts`);

    const groups = {
      relays: relays.map((r) => r.pid),
      redis: [redis.pid],
      coordinators: coordinators.map((c) => c.pid),
      volunteers: workers.map((w) => w.pid),
    };
    const cpuOf = () =>
      Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, sum(pids.map(cpuSeconds))]));
    const countersOf = () =>
      Promise.all(coordinators.map((c) => c.request({ type: "counters" }, "counters").then((m) => m.counters)));
    const relayRequestsOf = () => Promise.all(relays.map((r) => relayRequests(r.url)));
    const coordinatorsBefore = await countersOf();
    const relaysBefore = await relayRequestsOf();
    const cpuBefore = cpuOf();
    const nightStart = clock();
    const done = workers.map((w) => w.request({ type: "night" }, "night-done"));
    let sentAt = Number.NaN;
    const nightStats = Promise.all(done).then((all) => {
      sentAt = clock();
      return all.map((d) => d.stats);
    });
    let workersDone = false;
    void nightStats.then(() => {
      workersDone = true;
    });
    const progress = setInterval(() => {
      const night = (i: Accepted) => i.kind !== "enrolled";
      log(`accepted ${ledger.accepted.size}, still to decrypt ${ledger.missing(night)} (item × device)`);
    }, 10_000);
    await waitUntil(
      "the night's submissions",
      () => workersDone,
      everyone,
      options.drainTimeoutMs * 5,
      () => clock(),
    );
    const nights: NightStats[] = await nightStats;
    ledger.lastProgress = clock();
    const complete = await waitUntil(
      "the coordinators",
      () => ledger.missing() === 0,
      everyone,
      options.drainTimeoutMs,
      () => ledger.lastProgress,
    );
    clearInterval(progress);
    const nightEnd = clock();
    log(`night ${complete ? "complete" : "INCOMPLETE"} in ${((nightEnd - nightStart) / 1000).toFixed(1)} s`);

    const cpuAfter = cpuOf();
    const coordinatorsAfter = await countersOf();
    const relaysAfter = await relayRequestsOf();
    const coordinatorCounters: CoordinatorCounters[] = coordinatorsAfter.map((after, i) => {
      const before = coordinatorsBefore[i] as CoordinatorCounters;
      return {
        requests: after.requests - before.requests,
        connections: after.connections - before.connections,
        framesIn: after.framesIn - before.framesIn,
        framesOut: after.framesOut - before.framesOut,
      };
    });
    const relayCounts = relaysAfter.map((after, i) => countsSince(relaysBefore[i] ?? new Map(), after));
    const cpu = Object.fromEntries(
      Object.keys(groups).map((name) => [name, (cpuAfter[name] ?? Number.NaN) - (cpuBefore[name] ?? Number.NaN)]),
    );
    const relayRss = relays.map((r) => peakRss(r.pid));
    const redisMem = await redisMemory(redis.port);
    const coordinatorStats: CoordinatorStats[] = await Promise.all(
      coordinators.map((c) => c.request({ type: "stop" }, "stopped").then((m) => m.stats)),
    );
    for (const w of workers) w.send({ type: "stop" });
    return {
      options,
      realPhotos: photos.real,
      photoCount: photos.files.length,
      bare,
      enroll: {
        stats: enrollStats,
        seconds: (enrollEnd - enrollStart) / 1000,
        sentSeconds: (enrollSent - enrollStart) / 1000,
      },
      night: {
        start: nightStart,
        end: nightEnd,
        sentAt,
        stats: nights,
        accepted: [...ledger.accepted.values()].filter((i) => i.kind !== "enrolled"),
        written: ledger.written,
        missing: ledger.missing(),
        duplicates: ledger.duplicates + coordinatorStats.reduce((s, c) => s + c.duplicates, 0),
      },
      coordinators: coordinatorStats,
      coordinatorCounters,
      relayRequests: relayCounts,
      relayRss,
      cpu,
      redis: redisMem,
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model ?? "unknown CPU",
        load: loadavg()[0] ?? 0,
        node: process.version,
      },
    };
  } finally {
    for (const child of [...coordinators, ...workers]) child.kill();
    for (const relay of relays) await relay.stop({ removeData: true });
    await redis.stop();
    photos.cleanup();
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = parseOptions(process.argv.slice(2));
  const results = await runElection(options);
  const markdown = markdownReport(
    results,
    `node bench/dist/election/election.js ${process.argv.slice(2).join(" ")}`.trim(),
  );
  process.stdout.write(markdown);
  if (options.write) {
    const out = resolve(HERE, "../../results");
    const file = join(out, "election.md");
    writeFileSync(file, keepRunsRecorded(markdown, existsSync(file) ? readFileSync(file, "utf8") : ""));
    writeFileSync(join(out, "election.svg"), svgChart(results));
  }
}
