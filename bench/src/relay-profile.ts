// Drives one relay (in this process) with the relay benchmark's load generator, for profiling:
//
//   node bench/dist/relay-profile.js sqlite envelopes 8000 /tmp/sqlite-envelopes.cpuprofile
//   node bench/dist/cpuprofile-top.js /tmp/sqlite-envelopes.cpuprofile
//
// Only the load is profiled (node:inspector), not the set-up (enrollment, module loading).
//
// Store: sqlite | redis (starts its own redis-server with appendfsync always). Job: envelopes |
// bare (the bare fastify + zod route, in this process, for its CPU per request) |
// chunk-runs (photos of MAX_CHUNK_RUN chunks, one request each) | chunks (one chunk per request).
// Not a test and not a benchmark: it prints the load's figures, for orientation only.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { API, apiPath, initSodium, MAX_CHUNK_RUN, PHOTO_CHUNK_CIPHERTEXT_BYTES } from "@testigo/protocol";
import { startRedis } from "@testigo/server/testing";
import type { LoadJob, LoadResult } from "./relay-load.js";
import { benchCampaign, declarePhotos, startBareRoute, startBenchRelay } from "./relay-setup.js";

const run = promisify(execFile);
const LOAD = join(dirname(fileURLToPath(import.meta.url)), "relay-load.js");

async function load(job: LoadJob): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, [LOAD, JSON.stringify(job)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

/**
 * CPU time of this process's main thread (the event loop), in ms, from /proc (Linux; clock ticks
 * of 10 ms): the process total also counts libuv's pool and worker threads (WAL syncs, checkpoints).
 */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

const [storeKind = "sqlite", jobKind = "envelopes", countText = "8000", profileFile] = process.argv.slice(2);
const count = Number(countText);
await initSodium();
const redis = storeKind === "redis" ? await startRedis({ appendonly: true, appendfsync: "always" }) : undefined;
const relay = await startBenchRelay(redis === undefined ? { kind: "sqlite" } : { kind: "redis", url: redis.url });
try {
  const campaign = await benchCampaign(relay.app, 16);
  const photosUrl = `${relay.url}/v1/campaigns/${campaign.campaignId}/photos/`;
  const inspector = new Session();
  inspector.connect();
  if (profileFile !== undefined) {
    await inspector.post("Profiler.enable");
    await inspector.post("Profiler.start");
  }
  const usage = process.cpuUsage();
  const mainUsage = mainThreadCpuMs();
  const started = performance.now();
  let result: LoadResult;
  if (jobKind === "envelopes" || jobKind === "bare") {
    const bare = jobKind === "bare" ? await startBareRoute() : undefined;
    result = await load({
      kind: "envelopes",
      url:
        bare === undefined
          ? `${relay.url}${apiPath(API.submitEnvelope, { campaignId: campaign.campaignId })}`
          : `${bare.url}/bare/${campaign.campaignId}/envelopes`,
      campaignId: campaign.campaignId,
      tokens: campaign.volunteerTokens,
      count,
      concurrency: 64,
    });
    await bare?.close();
  } else {
    const chunksPerPhoto = jobKind === "chunk-runs" ? MAX_CHUNK_RUN : 8;
    const photos = await declarePhotos(relay.app, campaign, Math.ceil(count / chunksPerPhoto), chunksPerPhoto);
    result = await load(
      jobKind === "chunk-runs"
        ? {
            kind: "chunk-runs",
            photosUrl,
            photos,
            chunksPerPhoto,
            runChunks: MAX_CHUNK_RUN,
            chunkBytes: PHOTO_CHUNK_CIPHERTEXT_BYTES,
            concurrency: 64,
          }
        : {
            kind: "chunks",
            photosUrl,
            photos,
            chunksPerPhoto,
            chunkBytes: PHOTO_CHUNK_CIPHERTEXT_BYTES,
            concurrency: 64,
          },
    );
  }
  const cpu = process.cpuUsage(usage);
  const mainCpuMs = mainThreadCpuMs() - mainUsage;
  const wall = performance.now() - started;
  if (profileFile !== undefined) {
    const { profile } = await inspector.post("Profiler.stop");
    writeFileSync(profileFile, JSON.stringify(profile));
  }
  inspector.disconnect();
  const relayCpuMsPerRequest = (cpu.user + cpu.system) / 1000 / result.requests;
  const relayCpuShare = (cpu.user + cpu.system) / 1000 / wall;
  const mainThreadCpuMsPerRequest = mainCpuMs / result.requests;
  process.stdout.write(
    `${JSON.stringify({ store: storeKind, job: jobKind, ...result, relayCpuMsPerRequest, mainThreadCpuMsPerRequest, relayCpuShare })}\n`,
  );
} finally {
  await relay.close();
  await redis?.stop();
}
