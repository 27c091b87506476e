// One coordinator device, in its own process (forked by election.ts): it creates or joins the
// campaign through the SDK, mints invites (device 0), then drains the inbox continuously with
// the SDK's `fetchInbox`, into an output that keeps no photo bytes but checks each photo against
// the photos the volunteers took (byte for byte, by SHA-256) and reports every line it writes.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  addDevice,
  CoordinatorDevice,
  completeJoin,
  type FetchOutput,
  fetchInbox,
  initCampaign,
  joinRequest,
  MemoryStorage,
  MIN_KDF_LIMITS,
  mintInvites,
  type QuarantineEntry,
  type ReportLine,
} from "@testigo/client-sdk";
import { initSodium } from "@testigo/protocol";
import { nodeTransport } from "./link.js";
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

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "RELAY_UNREACHABLE" || code === "STORE_UNAVAILABLE";
}

function options() {
  if (start === undefined) throw new Error("not started");
  return { transport: nodeTransport(start.relayUrl, start.nodeUrl), kdfLimits: MIN_KDF_LIMITS };
}

function requireDevice(): CoordinatorDevice {
  if (device === undefined) throw new Error("no coordinator device yet");
  return device;
}

async function drain(): Promise<void> {
  const out = output;
  if (out === undefined) throw new Error("not started");
  const dev = requireDevice();
  while (!stopping) {
    const before = out.stats.written;
    try {
      await fetchInbox(dev, out, { limit: 100, onProgress: () => out.flush() });
    } catch (error) {
      // A network error or a relay's temporary failure stops one fetch run; the next one resumes
      // (nothing unwritten was acked). Anything else is a bug worth stopping the run for.
      if (!isTransient(error)) throw error;
      fetchErrors++;
      await sleep(IDLE_POLL_MS);
    }
    fetchRuns++;
    out.flush();
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
      drained ??= drain().catch((error: unknown) => fail(error));
      return;
    }
    case "stop": {
      stopping = true;
      const out = output;
      if (out === undefined) throw new Error("not started");
      // Let the fetch run in progress finish.
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
