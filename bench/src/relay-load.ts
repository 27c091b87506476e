// Load generator for the relay benchmark, run as a SEPARATE PROCESS so that the client's work does
// not share the server's event loop. Real HTTP/1.1 over loopback with keep-alive and `concurrency`
// requests in flight. Reads one JSON job from argv[2], prints one JSON result on stdout.
import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { performance } from "node:perf_hooks";
import { encodeEnvelopeHeader, envelopeLength, initSodium, randomBytes, toBase64url } from "@testigo/protocol";

export type LoadJob =
  | {
      readonly kind: "envelopes";
      /** Full URL of the submission route (relay or bare). */
      readonly url: string;
      readonly campaignId: string;
      /** Volunteer session tokens, used round-robin. */
      readonly tokens: readonly string[];
      readonly count: number;
      readonly concurrency: number;
    }
  | {
      readonly kind: "chunks";
      /** `${base}/v1/campaigns/${campaignId}/photos/` (photoId and chunk path appended). */
      readonly photosUrl: string;
      readonly photos: readonly { readonly photoId: string; readonly token: string }[];
      readonly chunksPerPhoto: number;
      readonly chunkBytes: number;
      readonly concurrency: number;
    }
  | {
      readonly kind: "chunk-runs";
      /** `${base}/v1/campaigns/${campaignId}/photos/` (photoId and run path appended). */
      readonly photosUrl: string;
      readonly photos: readonly { readonly photoId: string; readonly token: string }[];
      readonly chunksPerPhoto: number;
      /** Chunks per request (the last run of a photo may be shorter). */
      readonly runChunks: number;
      readonly chunkBytes: number;
      readonly concurrency: number;
    }
  | { readonly kind: "tcp"; readonly port: number; readonly bytes: number };

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly bytes: number;
  readonly failures: number;
  /** CPU time (user + system) the load process used, ms: what the client costs the machine. */
  readonly clientCpuMs?: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function send(
  agent: Agent,
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method, agent, headers: { ...headers, "content-length": String(body.length) } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Runs `total` requests with `concurrency` in flight; `make(i)` builds request i. */
async function drive(
  total: number,
  concurrency: number,
  make: (i: number) => Promise<number>,
  okStatus: (status: number) => boolean,
): Promise<{ latencies: number[]; seconds: number; failures: number }> {
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      const status = await make(i);
      latencies.push(performance.now() - t0);
      if (!okStatus(status)) failures++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, seconds: (performance.now() - start) / 1000, failures };
}

async function envelopes(job: Extract<LoadJob, { kind: "envelopes" }>): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const length = envelopeLength(0, 1) ?? 0;
  const body = randomBytes(length);
  const make = (i: number) => {
    const bytes = new Uint8Array(body);
    const header = encodeEnvelopeHeader({
      version: 1,
      campaignId: job.campaignId,
      messageId: toBase64url(randomBytes(16)),
      bucket: 0,
      recipientCount: 1,
    });
    bytes.set(header, 0);
    const token = job.tokens[i % job.tokens.length] ?? "";
    return send(
      agent,
      job.url,
      "POST",
      { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
      bytes,
    );
  };
  const run = await drive(job.count, job.concurrency, make, (s) => s === 202);
  agent.destroy();
  const sorted = run.latencies.sort((a, b) => a - b);
  return {
    requests: job.count,
    seconds: run.seconds,
    perSecond: job.count / run.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    bytes: job.count * length,
    failures: run.failures,
  };
}

async function chunks(job: Extract<LoadJob, { kind: "chunks" }>): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const chunk = randomBytes(job.chunkBytes);
  const total = job.photos.length * job.chunksPerPhoto;
  const make = (i: number) => {
    const photo = job.photos[Math.floor(i / job.chunksPerPhoto)];
    if (photo === undefined) throw new Error("no photo");
    const url = `${job.photosUrl}${photo.photoId}/chunks/${i % job.chunksPerPhoto}`;
    return send(
      agent,
      url,
      "PUT",
      { authorization: `Bearer ${photo.token}`, "content-type": "application/octet-stream" },
      chunk,
    );
  };
  const run = await drive(total, job.concurrency, make, (s) => s === 200);
  agent.destroy();
  const sorted = run.latencies.sort((a, b) => a - b);
  return {
    requests: total,
    seconds: run.seconds,
    perSecond: total / run.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    bytes: total * job.chunkBytes,
    failures: run.failures,
  };
}

async function chunkRuns(job: Extract<LoadJob, { kind: "chunk-runs" }>): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const runsPerPhoto = Math.ceil(job.chunksPerPhoto / job.runChunks);
  const chunk = randomBytes(job.chunkBytes);
  const bodies = new Map<number, Uint8Array>();
  const body = (count: number) => {
    let bytes = bodies.get(count);
    if (bytes === undefined) {
      bytes = new Uint8Array(count * job.chunkBytes);
      for (let i = 0; i < count; i++) bytes.set(chunk, i * job.chunkBytes);
      bodies.set(count, bytes);
    }
    return bytes;
  };
  const total = job.photos.length * runsPerPhoto;
  const make = (i: number) => {
    const photo = job.photos[Math.floor(i / runsPerPhoto)];
    if (photo === undefined) throw new Error("no photo");
    const first = (i % runsPerPhoto) * job.runChunks;
    const count = Math.min(job.runChunks, job.chunksPerPhoto - first);
    return send(
      agent,
      `${job.photosUrl}${photo.photoId}/chunk-runs/${first}`,
      "PUT",
      { authorization: `Bearer ${photo.token}`, "content-type": "application/octet-stream" },
      body(count),
    );
  };
  const run = await drive(total, job.concurrency, make, (s) => s === 200);
  agent.destroy();
  const sorted = run.latencies.sort((a, b) => a - b);
  const chunks = job.photos.length * job.chunksPerPhoto;
  return {
    requests: total,
    seconds: run.seconds,
    // Chunks per second, like the single-chunk job, so the two rows compare.
    perSecond: chunks / run.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    bytes: chunks * job.chunkBytes,
    failures: run.failures,
  };
}

/** Bare loopback TCP: write `bytes` into a socket whose other end discards them. */
function tcp(job: Extract<LoadJob, { kind: "tcp" }>): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const block = Buffer.alloc(64 * 1024, 7);
    const socket = connect(job.port, "127.0.0.1");
    const start = performance.now();
    let sent = 0;
    const pump = () => {
      while (sent < job.bytes) {
        sent += block.length;
        if (!socket.write(block)) return;
      }
      socket.end();
    };
    socket.on("connect", pump);
    socket.on("drain", pump);
    socket.on("error", reject);
    // The server closes once it has read everything: the transfer is complete end to end.
    socket.on("close", () => {
      const seconds = (performance.now() - start) / 1000;
      resolve({ requests: 1, seconds, perSecond: 1 / seconds, p50Ms: 0, p99Ms: 0, bytes: sent, failures: 0 });
    });
  });
}

const job = JSON.parse(process.argv[2] ?? "{}") as LoadJob;
await initSodium();
const result =
  job.kind === "envelopes"
    ? await envelopes(job)
    : job.kind === "chunks"
      ? await chunks(job)
      : job.kind === "chunk-runs"
        ? await chunkRuns(job)
        : await tcp(job);
const cpu = process.cpuUsage();
process.stdout.write(`${JSON.stringify({ ...result, clientCpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
