// The faults of a run, planned up front from the seed (kinds, times, targets, durations) so that
// FAULT_SEED replays the same plan, then applied one after another during the load.
import type { RedisProcess } from "@testigo/server/testing";
import { FAULT_STATUS_PATH, type FaultStatus } from "./fault-status.js";
import type { Prng } from "./prng.js";
import { type FetchLoop, type RelayNode, sleep, startWithRetries, type Worker, waitReadyz } from "./processes.js";

export const REDIS_FAULTS = [
  "relay-kill9",
  "relay-restart",
  "redis-kill9",
  "redis-sigstop",
  "fetch-kill9",
  "volunteer-kill9",
] as const;
export const SQLITE_FAULTS = ["relay-kill9", "fetch-kill9", "volunteer-kill9", "sqlite-write-fault"] as const;
export type FaultKind = (typeof REDIS_FAULTS)[number] | (typeof SQLITE_FAULTS)[number];

export interface PlannedFault {
  readonly kind: FaultKind;
  /** When to start it, in ms after the load began. */
  readonly atMs: number;
  /** Which relay node or volunteer (index). */
  readonly target: number;
  /** How long the thing stays down / stopped, or (fetch) how long to wait before the kill. */
  readonly pauseMs: number;
}

export interface FaultOutcome extends PlannedFault {
  /** What happened, for the report. */
  readonly detail: string;
  /** sqlite-write-fault: /readyz answered 503 after the failed write. */
  readonly readyzRed?: boolean;
  /** sqlite-write-fault: POST/PUT requests answered 2xx after the failed write (must be 0). */
  readonly acceptedAfterFailure?: number;
  /** sqlite-write-fault: /readyz answered 200 again after the restart. */
  readonly readyzGreenAfterRestart?: boolean;
  /** volunteer-kill9: the kill landed while a photo was being uploaded. */
  readonly midUpload?: boolean;
}

export interface Targets {
  readonly relays: readonly RelayNode[];
  readonly redis?: RedisProcess;
  readonly armWriteFault?: () => void;
  readonly workers: readonly Worker[];
  readonly fetchLoop: FetchLoop;
}

export function planFaults(
  random: Prng,
  options: {
    readonly kinds: readonly FaultKind[];
    readonly count: number;
    readonly loadMs: number;
    readonly relays: number;
    readonly volunteers: number;
    readonly include?: readonly FaultKind[];
  },
): PlannedFault[] {
  const include = options.include ?? [];
  const rest = Math.max(0, options.count - include.length);
  // Different kinds while they last (the included ones are already there), then any kind.
  const fresh = random.shuffle(options.kinds.filter((kind) => !include.includes(kind)));
  const chosen = [
    ...fresh.slice(0, rest),
    ...Array.from({ length: Math.max(0, rest - fresh.length) }, () => random.pick(options.kinds)),
  ];
  const kinds = random.shuffle([...include, ...chosen]);
  const slot = options.loadMs / Math.max(1, kinds.length + 1);
  return kinds.map((kind, i) => ({
    kind,
    atMs: Math.round(slot * (i + 0.5) + random.next() * slot * 0.5),
    target: kind === "volunteer-kill9" ? random.int(0, options.volunteers - 1) : random.int(0, options.relays - 1),
    pauseMs: kind === "fetch-kill9" ? random.int(0, 400) : random.int(500, 2_500),
  }));
}

export function describePlan(plan: readonly PlannedFault[]): string {
  return plan
    .map((f, i) => `  ${i + 1}. at ${(f.atMs / 1000).toFixed(1)} s: ${f.kind} (target ${f.target}, ${f.pauseMs} ms)`)
    .join("\n");
}

export async function applyFault(fault: PlannedFault, targets: Targets): Promise<FaultOutcome> {
  const node = targets.relays[fault.target % targets.relays.length] as RelayNode;
  switch (fault.kind) {
    case "relay-kill9": {
      await node.kill9();
      await sleep(fault.pauseMs);
      const attempts = await startWithRetries(() => node.restart());
      return {
        ...fault,
        detail: `relay ${node.url} killed (SIGKILL), restarted after ${fault.pauseMs} ms${tries(attempts)}`,
      };
    }
    case "relay-restart": {
      const attempts = await startWithRetries(() => node.restart());
      return {
        ...fault,
        detail: `relay ${node.url} restarted (SIGTERM, start) while clients failed over${tries(attempts)}`,
      };
    }
    case "redis-kill9": {
      const redis = need(targets.redis, fault.kind);
      await redis.kill9();
      await sleep(fault.pauseMs);
      await startWithRetries(() => redis.restart());
      return {
        ...fault,
        detail: `redis-server killed (SIGKILL), restarted on its data folder after ${fault.pauseMs} ms`,
      };
    }
    case "redis-sigstop": {
      const redis = need(targets.redis, fault.kind);
      redis.sigstop();
      await sleep(fault.pauseMs);
      redis.sigcont();
      return { ...fault, detail: `redis-server frozen (SIGSTOP) for ${fault.pauseMs} ms, then SIGCONT` };
    }
    case "fetch-kill9": {
      const killed = await targets.fetchLoop.kill9(fault.pauseMs);
      return { ...fault, detail: killed ? "a running coordinator fetch killed (SIGKILL)" : "no fetch was running" };
    }
    case "volunteer-kill9": {
      const worker = targets.workers[fault.target % targets.workers.length] as Worker;
      const midUpload = worker.running && (await worker.waitForChunk(20_000));
      await worker.kill9();
      await sleep(fault.pauseMs);
      worker.start();
      return {
        ...fault,
        midUpload,
        detail: `volunteer ${worker.config.name} killed (SIGKILL) ${midUpload ? "mid-upload" : "between uploads"}, restarted`,
      };
    }
    case "sqlite-write-fault": {
      const arm = need(targets.armWriteFault, fault.kind);
      arm();
      // The next write (any request that writes) fails; the store then refuses everything.
      const readyzRed = await waitReadyz(node.url, (status) => status === 503, 30_000);
      await sleep(fault.pauseMs);
      const stillRed = readyzRed && (await waitReadyz(node.url, (status) => status === 503, 2_000));
      const status = await faultStatus(node.url);
      await node.kill9();
      await startWithRetries(() => node.restart());
      const readyzGreenAfterRestart = await waitReadyz(node.url, (status) => status === 200, 10_000);
      return {
        ...fault,
        readyzRed: readyzRed && stillRed,
        readyzGreenAfterRestart,
        ...(status === undefined ? {} : { acceptedAfterFailure: status.acceptedAfterFailure }),
        detail:
          `injected SQLite write failure: ${status?.fired === true ? "a write failed" : "NO write failed"}, ` +
          `${status?.acceptedAfterFailure ?? "?"} submissions accepted after it, ` +
          `/readyz ${readyzRed && stillRed ? "503 until restart" : "NOT red"}, ` +
          `${readyzGreenAfterRestart ? "200" : "NOT 200"} after the restart`,
      };
    }
    default: {
      const never: never = fault.kind;
      throw new Error(`unknown fault ${String(never)}`);
    }
  }
}

/** The fault relay's own count (fault-relay.ts), or undefined if it did not answer. */
async function faultStatus(url: string): Promise<FaultStatus | undefined> {
  try {
    const response = await fetch(`${url}${FAULT_STATUS_PATH}`, { signal: AbortSignal.timeout(5_000) });
    return (await response.json()) as FaultStatus;
  } catch {
    return undefined;
  }
}

/** " (started at the 2nd attempt)" when the first start missed its readiness deadline. */
function tries(attempts: number): string {
  return attempts === 1 ? "" : ` (started at attempt ${attempts}: the first missed its readiness deadline)`;
}

function need<T>(value: T | undefined, kind: FaultKind): T {
  if (value === undefined) throw new Error(`fault ${kind} does not apply to this stack`);
  return value;
}
