// A share of the simulated volunteers, in one process (forked by election.ts). Each volunteer is a
// real SDK device: in-memory storage, key slots under a PIN (argon2id at the SDK's MIN_KDF_LIMITS,
// the cheapest the SDK accepts, so that thousands of simulated phones fit on two cores), its own
// keys and relay session. Enrollment by invite, then the night: status reports, check-ins and
// one acta photo (real scans, cycled), each queued and sent at once as the app does. Some acta
// uploads lose their link mid-photo; the app syncs again when the link is back, and the upload
// resumes where the relay says it stopped.
import { readFileSync } from "node:fs";
import { MemoryStorage, MIN_KDF_LIMITS, volunteer } from "@testigo/client-sdk";
import { initSodium, MAX_CHUNK_RUN, photoChunkCount, REPORT_KIND } from "@testigo/protocol";
import { Link } from "./link.js";
import {
  type Accepted,
  clock,
  type EnrollStats,
  type FromWorker,
  type NightStats,
  seededRandom,
  sleep,
  type ToWorker,
  type WorkerStart,
} from "./messages.js";

/** How long one sync run may spend retrying before it leaves the rest queued (the app then syncs again). */
const SYNC_BUDGET_MS = 500;
const PIN = "493817";

interface Device {
  readonly index: number;
  readonly v: volunteer.Volunteer;
  readonly client: ReturnType<volunteer.Volunteer["client"]>;
  readonly link: Link;
  readonly table: string;
  /** This volunteer's own generator (seed, worker, index): its schedule repeats with the seed. */
  readonly random: () => number;
}

function send(message: FromWorker): void {
  process.send?.(message);
}

let job: WorkerStart | undefined;
let random: () => number = Math.random;
let photos: Uint8Array[] = [];
const devices: Device[] = [];
let pending: Accepted[] = [];
const night = { refused: 0, cuts: 0, resumedSyncs: 0, chunksSent: 0 };
const requestsBefore = { count: 0, ms: 0 };

function flush(): void {
  if (pending.length === 0) return;
  send({ type: "accepted", items: pending });
  pending = [];
}
const flusher = setInterval(flush, 250);

/** Runs `work` over `count` indexes with `concurrency` in flight. */
async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

/** Syncs until nothing is pending: a run that meets no network ends early, the app tries again. */
async function syncUntilSent(device: Device): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const result = await volunteer.syncOutbox(device.v.store, {
      client: device.client,
      retry: {
        deadline: Date.now() + SYNC_BUDGET_MS,
        now: Date.now,
        sleep,
        random,
        baseDelayMs: volunteer.DEFAULT_BASE_DELAY_MS,
        maxDelayMs: volunteer.DEFAULT_MAX_DELAY_MS,
      },
    });
    night.refused += result.refused.length;
    night.chunksSent += result.chunksSent;
    if (result.unreachable === undefined && result.waitingForKeys !== true) {
      const left = (await volunteer.loadOutbox(device.v.store)).filter(volunteer.isPending);
      if (left.length === 0) return;
    }
    night.resumedSyncs++;
    await sleep(volunteer.backoffDelay(attempt, { random, baseDelayMs: 100, maxDelayMs: 2_000 }));
  }
}

let enrollRetries = 0;
let enrollFailures = 0;

/** Enrolls volunteer i and sends its `enrolled` report; its time in ms, undefined if it failed. */
async function enrollOne(i: number): Promise<number | undefined> {
  if (job === undefined) throw new Error("not started");
  const link = new Link(job.relayUrl, job.nodes[i % job.nodes.length] as string, job.outageMs);
  const t0 = clock();
  let enrolled: volunteer.Enrolled | undefined;
  for (let attempt = 0; enrolled === undefined; attempt++) {
    try {
      enrolled = await volunteer.enroll({
        storage: new MemoryStorage(),
        inviteCode: job.codes[i] as string,
        pin: PIN,
        limits: MIN_KDF_LIMITS,
        transport: link.transport,
        now: Date.now,
      });
    } catch (error) {
      // The app tries again on a network error (a fresh device each time: nothing was stored).
      // If the invite was redeemed before the answer was lost, the retry is refused: counted.
      const code = (error as { code?: unknown } | null)?.code;
      if (code !== "RELAY_UNREACHABLE" || attempt >= 5) {
        enrollFailures++;
        return undefined;
      }
      enrollRetries++;
      await sleep(volunteer.backoffDelay(attempt, { random, baseDelayMs: 250, maxDelayMs: 5_000 }));
    }
  }
  const v = await volunteer.Volunteer.fromStore(enrolled.store, { transport: link.transport });
  const device: Device = {
    index: i,
    v,
    client: v.client(),
    link,
    table: `${job.worker + 1}${i}.1`,
    random: seededRandom(job.seed * 1_000_003 + job.worker * 65_537 + i),
  };
  devices[i] = device;
  await syncUntilSent(device);
  const at = clock();
  pending.push({
    id: enrolled.enrolledReport.id,
    kind: REPORT_KIND.enrolled,
    submitAt: t0,
    acceptedAt: at,
    photoBytes: 0,
    dropped: false,
  });
  return at - t0;
}

async function enrollAll(): Promise<EnrollStats> {
  if (job === undefined) throw new Error("not started");
  const ms: number[] = [];
  await pool(job.codes.length, job.concurrency, async (i) => {
    const took = await enrollOne(i);
    if (took !== undefined) ms.push(took);
  });
  flush();
  return {
    enrolled: ms.length,
    retried: enrollRetries,
    failed: enrollFailures,
    msSorted: ms.sort((a, b) => a - b),
  };
}

/** The volunteer's night: reports alternating status and check-in, the acta somewhere among them. */
async function nightOf(device: Device): Promise<void> {
  if (job === undefined) throw new Error("not started");
  const items = job.reportsPerVolunteer;
  const actaAt = Math.floor(device.random() * (items + 1));
  for (let k = 0; k <= items; k++) {
    const submitAt = clock();
    let photoBytes = 0;
    let dropped = false;
    let queued: volunteer.QueuedItem;
    if (k === actaAt) {
      const photo = photos[(device.index * 7 + job.worker) % photos.length] as Uint8Array;
      photoBytes = photo.length;
      if (device.random() < job.dropFraction) {
        dropped = true;
        // Cut while sending upload request k of the photo's runs (up to MAX_CHUNK_RUN chunks each):
        // the k runs before it are on the relay already, the cut one is refused whole, and the
        // resumed sync sends what the relay says it lacks.
        const requests = Math.ceil(photoChunkCount(photo.length) / MAX_CHUNK_RUN);
        device.link.armCut(Math.floor(device.random() * requests));
      }
      queued = await device.v.acta({ table: device.table, text: "acta impresa", photos: [photo] });
    } else if (k % 2 === 0) {
      queued = await device.v.report(device.table, `estado ${k}: mesa abierta, sin incidentes`);
    } else {
      queued = await volunteer.queueMessage(
        device.v.store,
        { kind: REPORT_KIND.checkin, table: device.table, text: `check-in ${k}` },
        device.v.now(),
      );
    }
    await syncUntilSent(device);
    pending.push({ id: queued.id, kind: queued.kind, submitAt, acceptedAt: clock(), photoBytes, dropped });
  }
}

async function runNight(): Promise<NightStats> {
  if (job === undefined) throw new Error("not started");
  requestsBefore.count = devices.reduce((sum, d) => sum + d.link.requests, 0);
  requestsBefore.ms = devices.reduce((sum, d) => sum + d.link.requestMs, 0);
  const enrolled = devices.filter((d) => d !== undefined);
  await pool(enrolled.length, job.concurrency, async (i) => nightOf(enrolled[i] as Device));
  flush();
  return {
    ...night,
    cuts: devices.reduce((sum, d) => sum + d.link.cuts, 0),
    requests: devices.reduce((sum, d) => sum + d.link.requests, 0) - requestsBefore.count,
    requestMs: devices.reduce((sum, d) => sum + d.link.requestMs, 0) - requestsBefore.ms,
  };
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case "start":
      await initSodium();
      job = message;
      random = seededRandom(message.seed);
      photos = message.photoFiles.map((file) => new Uint8Array(readFileSync(file)));
      send({ type: "ready" });
      return;
    case "enroll":
      send({ type: "enrolled", stats: await enrollAll() });
      return;
    case "night":
      send({ type: "night-done", stats: await runNight() });
      return;
    case "stop":
      clearInterval(flusher);
      process.disconnect?.();
      return;
  }
}

function fail(error: unknown): void {
  send({ type: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  clearInterval(flusher);
  process.exitCode = 1;
  process.disconnect?.();
}

let queue: Promise<void> = Promise.resolve();
process.on("message", (message: ToWorker) => {
  queue = queue.then(() => handle(message)).catch(fail);
});
