// The fault-injection harness. A run starts, as separate processes: redis-server (AOF,
// appendfsync always) with 2 relay nodes, or 1 relay on SQLite; one coordinator (CLI); N volunteer
// workers that submit numbered reports and actas and fail over between nodes; and a loop of
// `testigo coordinator fetch`. During the load it applies faults planned from a seed; then it
// stops the load, lets every volunteer empty its outbox, drains the inbox and runs the checker.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { realActaNames, SHARED_ACTAS_DIR, startRelay } from "@testigo/client-sdk/testing";
import { type RedisProcess, startRedis } from "@testigo/server/testing";
import { enroll, initCoordinator, invite, readReports, sha256Hex, type VolunteerDevice } from "../helpers/campaign.js";
import { type CheckReport, checkQueue, formatReport, type OutputLine } from "./checker.js";
import {
  applyFault,
  describePlan,
  type FaultKind,
  type FaultOutcome,
  planFaults,
  REDIS_FAULTS,
  SQLITE_FAULTS,
} from "./faults.js";
import { HISTORY_SUFFIX, readHistory } from "./history.js";
import { prng } from "./prng.js";
import {
  FetchLoop,
  lastFetchFailure,
  type RelayNode,
  sleep,
  startFaultRelay,
  startFetch,
  startWithRetries,
  Worker,
  waitReadyz,
} from "./processes.js";

export type StackMode = "redis" | "sqlite";

export interface ScenarioOptions {
  readonly mode: StackMode;
  readonly seed: number;
  /** Faults during the load. */
  readonly faults: number;
  /** Kinds every plan must contain (the rest are drawn from the mode's kinds). */
  readonly include?: readonly FaultKind[];
  readonly loadMs: number;
  readonly volunteers: number;
  /** Every n-th report is an acta with a photo (default 4). */
  readonly photoEvery?: number;
  /**
   * The real acta scans (../shared/data/actas/images, required under CI=true) are sent when
   * present; otherwise synthetic photos of this many bytes (default 512 KiB: 8 chunks).
   */
  readonly photoBytes?: number;
  /** Random pause between a volunteer's reports, up to (default 300 ms). */
  readonly pauseMs?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Keep the work folder (histories, OUT, data) for inspection. */
  readonly keepWork?: boolean;
}

export interface ScenarioResult {
  readonly mode: StackMode;
  readonly seed: number;
  readonly plan: string;
  readonly faults: readonly FaultOutcome[];
  readonly report: CheckReport;
  /** Files in OUT/quarantine/ (envelopes or photos the coordinator could not accept): must be 0. */
  readonly quarantined: number;
  /** Harness problems: a worker that crashed on its own, a relay that did not come back, … */
  readonly problems: readonly string[];
  readonly fetchRuns: number;
  readonly durationMs: number;
  /** Everything above as text. */
  readonly text: string;
  /** The work folder when kept. */
  readonly work?: string;
}

/** How long volunteers may take to empty their outboxes, and the inbox to drain, after the load. */
const DRAIN_TIMEOUT_MS = 180_000;

/** How long a volunteer worker may take to open its device and run its first sync. */
const READY_TIMEOUT_MS = 120_000;
/** Each volunteer queues at least this many reports, however short the load, so there is something to check. */
const MIN_REPORTS = 3;

const RELAY_ENV = {
  TESTIGO_RATE_CAPACITY: "100000",
  TESTIGO_RATE_REFILL_PER_SECOND: "10000",
  TESTIGO_LOG_LEVEL: "warn",
};

interface Stack {
  readonly relays: RelayNode[];
  readonly redis?: RedisProcess;
  readonly armWriteFault?: () => void;
  stop(): Promise<void>;
}

async function startStack(mode: StackMode | "redis-no-aof", work: string, token: string): Promise<Stack> {
  if (mode === "sqlite") {
    let relay: Awaited<ReturnType<typeof startFaultRelay>> | undefined;
    await startWithRetries(async () => {
      relay = await startFaultRelay(join(work, "relay-data"), token);
    });
    const node = relay;
    if (node === undefined) throw new Error("unreachable: the fault relay did not start");
    return { relays: [node], armWriteFault: () => node.armWriteFault(), stop: () => node.stop() };
  }
  const redis =
    mode === "redis"
      ? await startRedis({ appendonly: true, appendfsync: "always" })
      : await startRedis({ appendonly: false, save: "" });
  const relays: RelayNode[] = [];
  try {
    for (let i = 0; i < (mode === "redis" ? 2 : 1); i++) {
      const dataDir = join(work, `relay-${i + 1}`);
      mkdirSync(dataDir, { recursive: true });
      await startWithRetries(async () => {
        relays.push(await startRelay({ dataDir, token, args: ["--redis", redis.url], env: RELAY_ENV }));
      });
    }
  } catch (error) {
    for (const relay of relays) await relay.stop();
    await redis.stop();
    throw error;
  }
  return {
    relays,
    redis,
    async stop() {
      for (const relay of relays) await relay.stop();
      await redis.stop();
    },
  };
}

interface Campaign {
  readonly coordinator: Awaited<ReturnType<typeof initCoordinator>>;
  readonly devices: VolunteerDevice[];
}

async function setUpCampaign(work: string, relayUrl: string, token: string, volunteers: number): Promise<Campaign> {
  const coordinator = await initCoordinator(work, "coordinator", relayUrl, token);
  const codes = await invite(coordinator, volunteers);
  const devices: VolunteerDevice[] = [];
  for (const [i, code] of codes.entries()) devices.push(await enroll(work, `v${i + 1}`, code));
  return { coordinator, devices };
}

function makeWorkers(
  work: string,
  campaign: Campaign,
  relays: readonly RelayNode[],
  options: { photoEvery: number; photoBytes: number; pauseMs: number; maxReports?: number; minReports?: number },
): Worker[] {
  const historyDir = join(work, "history");
  mkdirSync(historyDir, { recursive: true });
  return campaign.devices.map(
    (device) =>
      new Worker(
        {
          name: device.name,
          dir: device.dir,
          pinFile: device.pinFile,
          relays: relays.map((r) => r.url),
          historyFile: join(historyDir, `${device.name}${HISTORY_SUFFIX}`),
          stopFile: join(work, "stop"),
          photoEvery: options.photoEvery,
          photoFiles: options.photoBytes === 0 ? [] : realActaNames().map((name) => join(SHARED_ACTAS_DIR, name)),
          photoBytes: options.photoBytes,
          pauseMs: options.pauseMs,
          ...(options.maxReports === undefined ? {} : { maxReports: options.maxReports }),
          ...(options.minReports === undefined ? {} : { minReports: options.minReports }),
        },
        join(work, `${device.name}.worker.json`),
        join(work, `${device.name}.worker.log`),
      ),
  );
}

/** Waits for every worker to finish (empty outbox, "done"); a worker that crashed is restarted. */
async function waitWorkersDone(workers: readonly Worker[], problems: string[]): Promise<void> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  for (const worker of workers) {
    for (;;) {
      const code = await worker.waitExit(Math.max(1, deadline - Date.now()));
      if (code === 0) break;
      if (code === undefined) {
        problems.push(
          `volunteer ${worker.config.name} did not empty its outbox in time: ${worker.stderr().slice(-800)}`,
        );
        await worker.kill9();
        break;
      }
      worker.start(); // it crashed on its own (recorded in worker.crashes): resume
    }
  }
  for (const worker of workers) problems.push(...worker.crashes);
}

/** Fetches until two runs in a row write nothing and wait for no photo. */
async function drainInbox(coordinator: Campaign["coordinator"], out: string, problems: string[]): Promise<number> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  let quiet = 0;
  let runs = 0;
  while (quiet < 2) {
    if (Date.now() > deadline) {
      problems.push(`the inbox did not drain in time; last failed fetch: ${lastFetchFailure}`);
      break;
    }
    const summary = await startFetch(coordinator, out).done;
    runs++;
    if (summary === undefined) {
      await sleep(1_000);
      continue;
    }
    quiet = summary.written === 0 && summary.waitingForPhotos === 0 ? quiet + 1 : 0;
    if (summary.waitingForPhotos > 0) await sleep(500);
  }
  return runs;
}

function check(work: string, out: string): CheckReport {
  const lines = existsSync(join(out, "reports.jsonl")) ? (readReports(out) as unknown as OutputLine[]) : [];
  return checkQueue({
    history: readHistory(join(work, "history")),
    lines,
    photoSha256: (path) => {
      const file = join(out, path);
      return existsSync(file) ? sha256Hex(readFileSync(file)) : undefined;
    },
  });
}

function quarantineCount(out: string): number {
  const dir = join(out, "quarantine");
  return existsSync(dir) ? readdirSync(dir).length : 0;
}

/** A seeded fault run with the checker at the end (see the file comment). */
export async function runFaultScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const work = mkdtempSync(join(tmpdir(), `testigo-fault-${options.mode}-`));
  const token = randomBytes(32).toString("base64url");
  const problems: string[] = [];
  let stack: Stack | undefined;
  let workers: Worker[] = [];
  let fetchLoop: FetchLoop | undefined;
  try {
    stack = await startStack(options.mode, work, token);
    const relays = stack.relays;
    const plan = planFaults(prng(options.seed), {
      kinds: options.mode === "redis" ? REDIS_FAULTS : SQLITE_FAULTS,
      count: options.faults,
      loadMs: options.loadMs,
      relays: relays.length,
      volunteers: options.volunteers,
      ...(options.include === undefined ? {} : { include: options.include }),
    });
    const planText = describePlan(plan);
    log(`fault seed ${options.seed} (replay: FAULT_SEED=${options.seed}), ${options.mode}, plan:\n${planText}`);

    const campaign = await setUpCampaign(work, (relays[0] as RelayNode).url, token, options.volunteers);
    const out = join(work, "out");
    workers = makeWorkers(work, campaign, relays, {
      photoEvery: options.photoEvery ?? 4,
      photoBytes: options.photoBytes ?? 512 * 1024,
      pauseMs: options.pauseMs ?? 300,
      minReports: MIN_REPORTS,
    });
    log(`campaign ready after ${((Date.now() - started) / 1000).toFixed(1)} s: load starts`);
    for (const worker of workers) worker.start();
    fetchLoop = new FetchLoop(campaign.coordinator, out);
    fetchLoop.start();
    // The fault clock starts once every volunteer is up (device opened, first sync done).
    for (const worker of workers) {
      if (!(await worker.waitReady(READY_TIMEOUT_MS))) problems.push(`volunteer ${worker.config.name} never got ready`);
    }
    log(`volunteers ready after ${((Date.now() - started) / 1000).toFixed(1)} s: faults start`);

    const loadStart = Date.now();
    const outcomes: FaultOutcome[] = [];
    for (const fault of plan) {
      await sleep(Math.max(0, loadStart + fault.atMs - Date.now()));
      const outcome = await applyFault(fault, {
        relays,
        ...(stack.redis === undefined ? {} : { redis: stack.redis }),
        ...(stack.armWriteFault === undefined ? {} : { armWriteFault: stack.armWriteFault }),
        workers,
        fetchLoop,
      });
      outcomes.push(outcome);
      log(`  fault at ${((Date.now() - loadStart) / 1000).toFixed(1)} s: ${outcome.detail}`);
    }
    await sleep(Math.max(0, loadStart + options.loadMs - Date.now()));
    writeFileSync(join(work, "stop"), "");
    log("load stopped: volunteers empty their outboxes");

    for (const relay of relays) {
      if (!(await waitReadyz(relay.url, (s) => s === 200, 30_000))) {
        problems.push(`relay ${relay.url} was not ready after the faults: restarted`);
        await startWithRetries(() => relay.restart());
      }
    }
    await waitWorkersDone(workers, problems);
    await fetchLoop.stop();
    log(`outboxes empty after ${((Date.now() - started) / 1000).toFixed(1)} s: draining the inbox`);
    const drainRuns = await drainInbox(campaign.coordinator, out, problems);
    const report = check(work, out);
    const quarantined = quarantineCount(out);
    const fetchRuns = fetchLoop.runs + drainRuns;
    const durationMs = Date.now() - started;
    const text = [
      `fault run: ${options.mode}, seed ${options.seed} (replay: FAULT_SEED=${options.seed}), ` +
        `${options.volunteers} volunteers, load ${(options.loadMs / 1000).toFixed(0)} s, ` +
        `${fetchRuns} coordinator fetches, ${(durationMs / 1000).toFixed(1)} s in all`,
      "faults:",
      ...outcomes.map((o, i) => `  ${i + 1}. ${o.kind}: ${o.detail}`),
      formatReport(report),
      `  items the coordinator quarantined: ${quarantined}`,
      ...(problems.length === 0 ? [] : ["harness problems:", ...problems.map((p) => `  ${p}`)]),
    ].join("\n");
    return {
      mode: options.mode,
      quarantined,
      seed: options.seed,
      plan: planText,
      faults: outcomes,
      report,
      problems,
      fetchRuns,
      durationMs,
      text,
      ...(options.keepWork === true ? { work } : {}),
    };
  } finally {
    await fetchLoop?.stop();
    for (const worker of workers) await worker.kill9();
    await stack?.stop();
    if (options.keepWork !== true) rmSync(work, { recursive: true, force: true });
  }
}

export interface LossScenarioResult {
  readonly report: CheckReport;
  readonly text: string;
}

/**
 * The checker must be able to fail: Redis WITHOUT an append-only file (`appendonly no`, no
 * automatic snapshots). The campaign and enrollments are saved by one `SAVE`; then volunteers
 * submit reports the relay acknowledges (only in Redis's memory); redis-server is killed with
 * SIGKILL and restarted on its data folder, which brings back the snapshot and nothing after it.
 * Every acknowledgement since the SAVE is lost, and the checker must say so.
 */
export async function runLossScenario(options: { volunteers: number; reports: number }): Promise<LossScenarioResult> {
  const work = mkdtempSync(join(tmpdir(), "testigo-fault-loss-"));
  const token = randomBytes(32).toString("base64url");
  const problems: string[] = [];
  let stack: Stack | undefined;
  let workers: Worker[] = [];
  try {
    stack = await startStack("redis-no-aof", work, token);
    const redis = stack.redis as RedisProcess;
    const relay = stack.relays[0] as RelayNode;
    const campaign = await setUpCampaign(work, relay.url, token, options.volunteers);
    await redisSave(redis.port);
    workers = makeWorkers(work, campaign, stack.relays, {
      photoEvery: 0,
      photoBytes: 0,
      pauseMs: 50,
      maxReports: options.reports,
    });
    for (const worker of workers) worker.start();
    await waitWorkersDone(workers, problems);
    await redis.kill9();
    await redis.restart();
    const out = join(work, "out");
    await drainInbox(campaign.coordinator, out, problems);
    const report = check(work, out);
    const text = [
      "Redis with appendonly no, SAVE before the load, kill -9 after the acknowledgements:",
      formatReport(report),
      ...(problems.length === 0 ? [] : ["harness problems:", ...problems.map((p) => `  ${p}`)]),
    ].join("\n");
    return { report, text };
  } finally {
    for (const worker of workers) await worker.kill9();
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function redisSave(port: number): Promise<void> {
  const { execFile } = await import("node:child_process");
  await new Promise<void>((resolve, reject) =>
    execFile("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "SAVE"], { timeout: 10_000 }, (error, stdout) =>
      error === null && stdout.trim() === "OK" ? resolve() : reject(error ?? new Error(`SAVE answered ${stdout}`)),
    ),
  );
}
