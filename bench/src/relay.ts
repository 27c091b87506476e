// The relay benchmark (DESIGN.md §6): envelope submissions with session auth against a bare
// fastify route that validates with zod and answers, and photo-chunk ingest against a bare
// loopback TCP transfer, all in one run on this machine. Not a test: nothing here asserts.
//
//   node bench/dist/relay.js            (after `npx tsc -b`; needs redis-server on PATH for Redis)
//
// Clients run in a separate process (relay-load.ts): real HTTP/1.1 over loopback, keep-alive,
// CONCURRENCY requests in flight. Runs alternate relay/baseline; medians are reported.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  API,
  apiPath,
  envelopeLength,
  initSodium,
  MAX_CHUNK_RUN,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
} from "@testigo/protocol";
import { startRedis } from "@testigo/server/testing";
import { median } from "./measure.js";
import type { LoadJob, LoadResult } from "./relay-load.js";
import {
  benchCampaign,
  declarePhotos,
  durableWriteMBps,
  startBareRoute,
  startBenchRelay,
  startTcpSink,
} from "./relay-setup.js";

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const LOAD = join(HERE, "relay-load.js");
const CONCURRENCY = 64;
const RUNS = 3;
const VOLUNTEERS = 16;
const PHOTOS_PER_RUN = 24;
const CHUNKS_PER_PHOTO = 8;
/** Run uploads: photos of MAX_CHUNK_RUN chunks, one request each. */
const RUN_PHOTOS_PER_RUN = 64;
const TCP_BYTES = 512 * 1024 * 1024;
/** Envelope submissions per timed run: the same count for the relay and the bare route. */
const ENVELOPES_PER_RUN = 8000;

/** CPU time (user + system, ms) of another process (or one thread of it), from /proc (Linux); 0 elsewhere. */
function processCpuMs(pid: number | undefined, thread?: number): number {
  if (pid === undefined || pid < 0) return 0;
  try {
    const path = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`;
    const fields = readFileSync(path, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/**
 * Runs a load job and measures the CPU the server side used for it: this process (where the
 * relay or the bare route runs) and, for Redis, the redis-server. Per request, so the figure does
 * not depend on how busy the machine was.
 */
async function measured(job: LoadJob, redisPid?: number): Promise<Measured> {
  const usage = process.cpuUsage();
  const mainBefore = processCpuMs(process.pid, process.pid);
  const redisBefore = processCpuMs(redisPid);
  const result = await load(job);
  const used = process.cpuUsage(usage);
  return {
    ...result,
    serverCpuMsPerRequest: (used.user + used.system) / 1000 / result.requests,
    mainThreadCpuMsPerRequest: (processCpuMs(process.pid, process.pid) - mainBefore) / result.requests,
    redisCpuMsPerRequest: (processCpuMs(redisPid) - redisBefore) / result.requests,
  };
}

interface Measured extends LoadResult {
  readonly serverCpuMsPerRequest: number;
  /** Of it, the main thread's (the event loop; the rest is libuv's pool and worker threads). */
  readonly mainThreadCpuMsPerRequest: number;
  readonly redisCpuMsPerRequest: number;
}

async function load(job: LoadJob): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, [LOAD, JSON.stringify(job)], { maxBuffer: 1 << 20 });
  const result = JSON.parse(stdout) as LoadResult;
  if (result.failures > 0) throw new Error(`${result.failures} of ${result.requests} requests failed (${job.kind})`);
  return result;
}

interface EnvelopeRow {
  readonly store: string;
  readonly relay: Measured[];
  readonly bare: Measured[];
}

interface PhotoRow {
  readonly store: string;
  /** One chunk per request. */
  readonly relay: LoadResult[];
  /** MAX_CHUNK_RUN chunks per request (PUT .../chunk-runs/:first). */
  readonly runs: LoadResult[];
  readonly tcp: LoadResult[];
}

const mb = (r: LoadResult) => r.bytes / r.seconds / 1e6;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function benchStore(store: { kind: "sqlite" } | { kind: "redis"; url: string; pid: number }, count: number) {
  const name =
    store.kind === "sqlite" ? "embedded (SQLite, WAL fdatasync before answering)" : "Redis (AOF, appendfsync always)";
  const relay = await startBenchRelay(store);
  const bare = await startBareRoute();
  const sink = await startTcpSink();
  try {
    const campaign = await benchCampaign(relay.app, VOLUNTEERS);
    const envelopeJob = (url: string, n: number): LoadJob => ({
      kind: "envelopes",
      url,
      campaignId: campaign.campaignId,
      tokens: campaign.volunteerTokens,
      count: n,
      concurrency: CONCURRENCY,
    });
    const relayUrl = `${relay.url}${apiPath(API.submitEnvelope, { campaignId: campaign.campaignId })}`;
    const bareUrl = `${bare.url}/bare/${campaign.campaignId}/envelopes`;
    // Warm-up: JIT, connection pools, the store's caches.
    await load(envelopeJob(relayUrl, Math.min(500, count)));
    await load(envelopeJob(bareUrl, 1000));
    const envelopes: EnvelopeRow = { store: name, relay: [], bare: [] };
    const redisPid = store.kind === "redis" ? store.pid : undefined;
    for (let i = 0; i < RUNS; i++) {
      envelopes.relay.push(await measured(envelopeJob(relayUrl, count), redisPid));
      envelopes.bare.push(await measured(envelopeJob(bareUrl, count)));
    }

    const photos: PhotoRow = { store: name, relay: [], runs: [], tcp: [] };
    const photosUrl = `${relay.url}/v1/campaigns/${campaign.campaignId}/photos/`;
    for (let i = 0; i < RUNS; i++) {
      const declared = await declarePhotos(relay.app, campaign, PHOTOS_PER_RUN, CHUNKS_PER_PHOTO);
      photos.relay.push(
        await load({
          kind: "chunks",
          photosUrl,
          photos: declared,
          chunksPerPhoto: CHUNKS_PER_PHOTO,
          chunkBytes: PHOTO_CHUNK_CIPHERTEXT_BYTES,
          concurrency: CONCURRENCY,
        }),
      );
      photos.tcp.push(await load({ kind: "tcp", port: sink.port, bytes: TCP_BYTES }));
      const runPhotos = await declarePhotos(relay.app, campaign, RUN_PHOTOS_PER_RUN, MAX_CHUNK_RUN);
      photos.runs.push(
        await load({
          kind: "chunk-runs",
          photosUrl,
          photos: runPhotos,
          chunksPerPhoto: MAX_CHUNK_RUN,
          runChunks: MAX_CHUNK_RUN,
          chunkBytes: PHOTO_CHUNK_CIPHERTEXT_BYTES,
          concurrency: CONCURRENCY,
        }),
      );
    }
    return { envelopes, photos };
  } finally {
    await relay.close();
    await bare.close();
    await sink.close();
  }
}

function envelopeTable(rows: readonly EnvelopeRow[]): string {
  const lines = [
    "| store | relay req/s | bare req/s | ratio (goal ≥ 0.6) | relay p99 ms | bare p99 ms | p99 ratio (goal ≤ 2) | relay CPU ms/req (+ Redis) | of it, event loop | bare CPU ms/req |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    const rps = median(row.relay.map((r) => r.perSecond));
    const bareRps = median(row.bare.map((r) => r.perSecond));
    const p99 = median(row.relay.map((r) => r.p99Ms));
    const bareP99 = median(row.bare.map((r) => r.p99Ms));
    const ratio = rps / bareRps;
    const p99Ratio = p99 / bareP99;
    const cpu = median(row.relay.map((r) => r.serverCpuMsPerRequest));
    const redisCpu = median(row.relay.map((r) => r.redisCpuMsPerRequest));
    const bareCpu = median(row.bare.map((r) => r.serverCpuMsPerRequest));
    const mainCpu = median(row.relay.map((r) => r.mainThreadCpuMsPerRequest));
    lines.push(
      `| ${row.store} | ${fmt(rps)} | ${fmt(bareRps)} | ${fmt(ratio, 2)} ${ratio >= 0.6 ? "met" : "NOT met"} | ${fmt(p99, 1)} | ${fmt(bareP99, 1)} | ${fmt(p99Ratio, 1)} ${p99Ratio <= 2 ? "met" : "NOT met"} | ${fmt(cpu, 3)}${redisCpu > 0 ? ` (+ ${fmt(redisCpu, 3)})` : ""} | ${fmt(mainCpu, 3)} | ${fmt(bareCpu, 3)} |`,
    );
  }
  return lines.join("\n");
}

function photoTable(rows: readonly PhotoRow[]): string {
  const lines = [
    "| store | upload | relay ingest MB/s | chunks/s | relay p99 ms | bare loopback TCP MB/s | ratio (goal ≥ 0.25) |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    const tcpMb = median(row.tcp.map(mb));
    for (const [upload, results] of [
      ["one chunk per request", row.relay],
      [`runs of ${MAX_CHUNK_RUN} chunks`, row.runs],
    ] as const) {
      const relayMb = median(results.map(mb));
      const chunks = median(results.map((r) => r.perSecond));
      const p99 = median(results.map((r) => r.p99Ms));
      const ratio = relayMb / tcpMb;
      lines.push(
        `| ${row.store} | ${upload} | ${fmt(relayMb, 1)} | ${fmt(chunks)} | ${fmt(p99, 1)} | ${fmt(tcpMb, 0)} | ${fmt(ratio, 3)} ${ratio >= 0.25 ? "met" : "NOT met"} |`,
      );
    }
  }
  return lines.join("\n");
}

export async function runAndWriteRelayBench(): Promise<string> {
  await initSodium();
  const loadBefore = loadavg()[0] ?? 0;
  const redis = await startRedis({ appendonly: true, appendfsync: "always" });
  const results = [];
  // The disk's durable-write ceiling, before and after the relay runs (other work moves it).
  const disk = () => ({ small: durableWriteMBps(64 * 1024, 16 << 20), large: durableWriteMBps(1 << 20, 64 << 20) });
  const diskBefore = disk();
  try {
    results.push(await benchStore({ kind: "sqlite" }, ENVELOPES_PER_RUN));
    results.push(await benchStore({ kind: "redis", url: redis.url, pid: redis.pid }, ENVELOPES_PER_RUN));
  } finally {
    await redis.stop();
  }
  const diskAfter = disk();
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const markdown = [
    "# Relay benchmark",
    "",
    `Node ${process.version}, ${cpus().length} × ${cpu}, load average ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]?.toFixed(2)} at the end.`,
    `Clients: a separate process, HTTP/1.1 keep-alive over loopback, ${CONCURRENCY} requests in flight, ${VOLUNTEERS} volunteer sessions round-robin.`,
    `Medians of ${RUNS} runs, relay and baseline alternating, ${fmt(ENVELOPES_PER_RUN)} envelopes per run for each. Generated by \`node bench/dist/relay.js\`.`,
    "",
    `## Envelope submissions (${envelopeLength(0, 1)} bytes, bucket 0, one recipient)`,
    "",
    "Relay: `POST /v1/campaigns/:id/envelopes` with session auth (sealed token opened, or remembered per relay node once it opened; volunteer's revocation status read from the store, remembered per relay node for at most 1 s; rate limit in memory), header check, durable idempotent store and fan-out (SQLite: group commit, WAL synced and checkpointed off the event loop). Bare: a fastify route that parses the octet-stream body, validates the path with zod, reads the header and answers 202. CPU ms/req: CPU time (user + system) of the process serving the requests (relay or bare route) per request, and of redis-server for the Redis rows (of it, the event loop: the relay's main thread; the rest is WAL syncs in libuv's pool, SQLite checkpoints in their worker thread, GC threads); the clients' CPU is not in it. It depends less on how busy the machine was than req/s, but rises with contention.",
    "",
    envelopeTable(results.map((r) => r.envelopes)),
    "",
    `## Photo ingest (${PHOTO_CHUNK_CIPHERTEXT_BYTES}-byte chunks)`,
    "",
    `Relay, with session auth: one chunk per request, \`PUT .../photos/:photoId/chunks/:index\` (${PHOTOS_PER_RUN} photos × ${CHUNKS_PER_PHOTO} chunks per run); runs, \`PUT .../photos/:photoId/chunk-runs/:first\` with ${MAX_CHUNK_RUN} chunks (${fmt((MAX_CHUNK_RUN * PHOTO_CHUNK_CIPHERTEXT_BYTES) / 1024 / 1024, 2)} MiB) per request (${RUN_PHOTOS_PER_RUN} photos × ${MAX_CHUNK_RUN} chunks per run). Bare: one loopback TCP connection writing ${TCP_BYTES / 1024 / 1024} MiB into a socket that discards them.`,
    "",
    photoTable(results.map((r) => r.photos)),
    "",
    `Disk ceiling in the same run (the relay's temporary folder; write + fdatasync per block, like \`dd oflag=dsync\`), before / after the relay runs: 64 KiB blocks ${fmt(diskBefore.small, 0)} / ${fmt(diskAfter.small, 0)} MB/s, 1 MiB blocks ${fmt(diskBefore.large, 0)} / ${fmt(diskAfter.large, 0)} MB/s.`,
    "",
  ].join("\n");
  const out = resolve(HERE, "../results/relay.md");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, markdown);
  return markdown;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(await runAndWriteRelayBench());
}
