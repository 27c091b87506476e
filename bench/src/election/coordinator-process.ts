// One coordinator device, in its own process (forked by election.ts): it creates or joins the
// campaign through the SDK, mints invites (device 0), then drains the inbox continuously, into
// an output that keeps no photo bytes but checks each photo against the photos the volunteers
// took (byte for byte, by SHA-256) and reports every line it writes. Two ways to drain:
//  - "follow" (the default, what `testigo coordinator fetch --follow` does): the SDK's
//    `followInbox`, items pushed over the relay's WebSocket, one fetch session for the night;
//  - "poll": the SDK's `fetchInbox` in a loop (one fetch session per run, each starting with the
//    epoch-key check, the output's written ids and the wipe-deadline scan), 100 ms apart when idle.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  addDevice,
  CoordinatorDevice,
  completeJoin,
  type FetchOutput,
  fetchInbox,
  followInbox,
  initCampaign,
  joinRequest,
  MemoryStorage,
  MIN_KDF_LIMITS,
  mintInvites,
  type QuarantineEntry,
  type ReportLine,
  type WebSocketConstructor,
} from "@testigo/client-sdk";
import { initSodium } from "@testigo/protocol";
import { WebSocket } from "ws";
import { Link } from "./link.js";
import {
  type CoordinatorStart,
  type CoordinatorStats,
  clock,
  type FromCoordinator,
  sleep,
  type ToCoordinator,
  type Written,
} from "./messages.js";

const PASSPHRASE = randomBytes(24).toString("base64url");
/** Pause between fetch runs that wrote nothing (an idle device polls the inbox this often). */
const IDLE_POLL_MS = 100;

function send(message: FromCoordinator): void {
  process.send?.(message);
}

/** Keeps ids and photo digests only; every write is "durable" at once (memory). */
class CheckingOutput implements FetchOutput {
  readonly ids = new Set<string>();
  readonly photoDigests = new Map<string, string>();
  stats = { written: 0, duplicates: 0, quarantined: 0, photoMismatches: 0, photos: 0, photoBytes: 0 };
  private pending: Written[] = [];

  constructor(private readonly expected: ReadonlySet<string>) {}

  async writtenIds(): Promise<ReadonlySet<string>> {
    return this.ids;
  }
  async findPhoto(photoId: string, sha256?: Uint8Array): Promise<string | undefined> {
    const digest = this.photoDigests.get(photoId);
    if (digest === undefined) return undefined;
    if (sha256 !== undefined && Buffer.from(sha256).toString("hex") !== digest) return undefined;
    return `photos/${photoId}`;
  }
  async writePhoto(photoId: string, bytes: Uint8Array): Promise<string> {
    const digest = createHash("sha256").update(bytes).digest("hex");
    if (!this.expected.has(digest)) this.stats.photoMismatches++;
    this.photoDigests.set(photoId, digest);
    this.stats.photos++;
    this.stats.photoBytes += bytes.length;
    return `photos/${photoId}`;
  }
  async appendReports(lines: readonly ReportLine[]): Promise<void> {
    const at = clock();
    for (const line of lines) {
      if (this.ids.has(line.id)) this.stats.duplicates++;
      this.ids.add(line.id);
      this.stats.written++;
      this.pending.push({ id: line.id, kind: line.kind, at });
    }
  }
  async writeQuarantine(_entry: QuarantineEntry): Promise<void> {
    this.stats.quarantined++;
  }
  flush(): void {
    if (this.pending.length === 0) return;
    send({ type: "written", lines: this.pending });
    this.pending = [];
  }
}

let start: CoordinatorStart | undefined;
let device: CoordinatorDevice | undefined;
let output: CheckingOutput | undefined;
const storage = new MemoryStorage();
let drained: Promise<void> | undefined;
let stopping = false;
let fetchRuns = 0;
let fetchErrors = 0;
let link: Link | undefined;
/** The live inbox: connections opened, frames received (item batches) and sent (acks). */
const live = { connections: 0, framesIn: 0, framesOut: 0 };
const stopFollow = new AbortController();

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "RELAY_UNREACHABLE" || code === "STORE_UNAVAILABLE";
}

function options() {
  if (start === undefined) throw new Error("not started");
  link ??= new Link(start.relayUrl, start.nodeUrl, 0);
  return { transport: link.transport, kdfLimits: MIN_KDF_LIMITS };
}

/**
 * `ws`'s WebSocket, connecting to this device's node instead of the campaign's relay URL (as the
 * HTTP transport does), and counting frames.
 */
function nodeWebSocket(relayUrl: string, nodeUrl: string): WebSocketConstructor {
  const from = relayUrl.replace(/^http/, "ws");
  const to = nodeUrl.replace(/^http/, "ws");
  class NodeWebSocket extends WebSocket {
    constructor(url: string, protocols: string[]) {
      super(url.startsWith(from) ? to + url.slice(from.length) : url, protocols);
      live.connections++;
      this.on("message", () => {
        live.framesIn++;
      });
    }
    override send(data: string): void {
      live.framesOut++;
      super.send(data);
    }
  }
  return NodeWebSocket as unknown as WebSocketConstructor;
}

function requireDevice(): CoordinatorDevice {
  if (device === undefined) throw new Error("no coordinator device yet");
  return device;
}

/** How often the lines written are reported to the bench (each line carries the time it was written). */
const REPORT_EVERY_MS = 250;

async function drain(mode: "follow" | "poll"): Promise<void> {
  const out = output;
  if (out === undefined) throw new Error("not started");
  const reporter = setInterval(() => out.flush(), REPORT_EVERY_MS);
  try {
    await (mode === "follow" ? follow() : poll());
  } finally {
    clearInterval(reporter);
    out.flush();
  }
}

/** The live inbox until "stop": one fetch session, batches pushed by the relay. */
async function follow(): Promise<void> {
  const out = output;
  if (out === undefined || start === undefined) throw new Error("not started");
  fetchRuns++;
  await followInbox(requireDevice(), out, {
    signal: stopFollow.signal,
    WebSocket: nodeWebSocket(start.relayUrl, start.nodeUrl),
    onDrop: () => {
      fetchErrors++;
    },
  });
}

/** `fetchInbox` runs one after another until "stop". */
async function poll(): Promise<void> {
  const out = output;
  if (out === undefined) throw new Error("not started");
  const dev = requireDevice();
  while (!stopping) {
    const before = out.stats.written;
    try {
      await fetchInbox(dev, out, { limit: 100 });
    } catch (error) {
      // A network error or a relay's temporary failure stops one fetch run; the next one resumes
      // (nothing unwritten was acked). Anything else is a bug worth stopping the run for.
      if (!isTransient(error)) throw error;
      fetchErrors++;
      await sleep(IDLE_POLL_MS);
    }
    fetchRuns++;
    if (out.stats.written === before) await sleep(IDLE_POLL_MS);
  }
}

async function handle(message: ToCoordinator): Promise<void> {
  switch (message.type) {
    case "start": {
      await initSodium();
      start = message;
      const digests = new Set(
        message.photoFiles.map((file) => createHash("sha256").update(readFileSync(file)).digest("hex")),
      );
      output = new CheckingOutput(digests);
      send({ type: "ready" });
      return;
    }
    case "init": {
      if (start === undefined) throw new Error("not started");
      const result = await initCampaign(storage, {
        ...options(),
        relayUrl: start.relayUrl,
        passphrase: PASSPHRASE,
        operatorToken: start.operatorToken,
        label: "coordinator 0",
      });
      device = await CoordinatorDevice.open(storage, PASSPHRASE, options());
      send({ type: "initialised", campaignId: result.campaignId });
      return;
    }
    case "join-request": {
      if (start === undefined) throw new Error("not started");
      const request = await joinRequest(storage, {
        ...options(),
        passphrase: PASSPHRASE,
        relayUrl: start.relayUrl,
        label: `coordinator ${start.index}`,
      });
      send({ type: "join-request", request });
      return;
    }
    case "add-device": {
      const { bundle } = await addDevice(requireDevice(), message.request);
      send({ type: "bundle", bundle });
      return;
    }
    case "complete-join": {
      device = await completeJoin(storage, { ...options(), passphrase: PASSPHRASE, bundle: message.bundle });
      send({ type: "joined" });
      return;
    }
    case "mint": {
      const codes: string[] = [];
      for (let done = 0; done < message.count; done += 1000) {
        const minted = await mintInvites(requireDevice(), { count: Math.min(1000, message.count - done) });
        codes.push(...minted.map((m) => m.code));
      }
      send({ type: "invites", codes });
      return;
    }
    case "drain": {
      drained ??= drain(message.mode).catch((error: unknown) => fail(error));
      return;
    }
    case "counters": {
      send({ type: "counters", counters: { requests: link?.requests ?? 0, ...live } });
      return;
    }
    case "stop": {
      stopping = true;
      stopFollow.abort();
      const out = output;
      if (out === undefined) throw new Error("not started");
      // Let the fetch run (or the batch) in progress finish.
      await drained;
      out.flush();
      const stats: CoordinatorStats = { ...out.stats, fetchRuns, fetchErrors };
      send({ type: "stopped", stats });
      process.disconnect?.();
      return;
    }
  }
}

function fail(error: unknown): void {
  send({ type: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exitCode = 1;
  process.disconnect?.();
}

let queue: Promise<void> = Promise.resolve();
process.on("message", (message: ToCoordinator) => {
  queue = queue.then(() => handle(message)).catch(fail);
});
