// A simulated volunteer, one per process (`node test/dist/fault/volunteer-worker.js CONFIG.json`):
// opens its enrolled device with the SDK, queues numbered status reports and, every few, an acta
// with a photo, and syncs after each through a failover transport over the relay nodes. Every
// acknowledgement is recorded (fsynced) in its history file. Killed with SIGKILL and started again,
// it sends what its outbox still holds (a photo resumes at the first chunk the relay lacks) and
// goes on numbering after the last report it recorded. Chunk progress goes to stdout ("chunk …"),
// so the harness can kill it mid-upload; "ready" once its first sync ran.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { volunteer as sdk } from "@testigo/client-sdk";
import { NodeStorage } from "@testigo/client-sdk/node";
import { syntheticActa } from "@testigo/client-sdk/testing";
import { initSodium } from "@testigo/protocol";
import { failoverTransport } from "./failover-transport.js";
import { HistoryWriter, readHistoryFile } from "./history.js";
import type { WorkerConfig } from "./worker-config.js";

const SYNC_BUDGET_MS = 15_000;
const REQUEST_TIMEOUT_MS = 5_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

const configFile = process.argv[2];
if (configFile === undefined) throw new Error("usage: volunteer-worker.js CONFIG.json");
const config = JSON.parse(readFileSync(configFile, "utf8")) as WorkerConfig;
const name = config.name;

await initSodium();
const previous = existsSync(config.historyFile) ? readHistoryFile(config.historyFile) : [];
let n = 1 + Math.max(0, ...previous.map((r) => (r.t === "queued" ? r.n : 0)));
const history = new HistoryWriter(config.historyFile);
const pin = readFileSync(config.pinFile, "utf8").trim();
const device = await sdk.Volunteer.open(await NodeStorage.open(config.dir), pin, {
  transport: failoverTransport(config.relays),
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
});
history.append({ t: "start", volunteer: name, pseudonym: device.identity.pseudonym });

const onEvent = (event: sdk.SyncEvent): void => {
  if (event.type === "envelope-sent") history.append({ t: "acked", volunteer: name, id: event.id, kind: event.kind });
  else if (event.type === "photo-done") history.append({ t: "photo-acked", volunteer: name, photoId: event.id });
  else if (event.type === "chunk-sent") process.stdout.write(`chunk ${event.id} ${event.done}/${event.total}\n`);
};

/** One sync run; failures (relay down, Redis stopped, …) are printed and the item stays queued. */
const sync = async (): Promise<void> => {
  const began = Date.now();
  try {
    const result = await device.sync({ budgetMs: SYNC_BUDGET_MS, onEvent });
    for (const r of result.refused) history.append({ t: "refused", volunteer: name, id: r.id, code: r.code });
    if (Date.now() - began > 2_000 || result.unreachable !== undefined || result.waitingForKeys === true) {
      const note = result.unreachable ?? (result.waitingForKeys === true ? "waiting for epoch keys" : "ok");
      process.stderr.write(`${name}: sync took ${Date.now() - began} ms: ${note}\n`);
    }
    if (result.unreachable !== undefined) await sleep(250);
  } catch (error) {
    process.stderr.write(`${name}: sync failed: ${(error as Error).name}: ${(error as Error).message}\n`);
    await sleep(500);
  }
};

await sync();
process.stdout.write("ready\n");
const more = (): boolean =>
  n <= (config.minReports ?? 0) ||
  (!existsSync(config.stopFile) && (config.maxReports === undefined || n <= config.maxReports));
while (more()) {
  const table = `${name}-${n}`;
  const text = `fault-run ${name} #${n}`;
  if (config.photoEvery > 0 && n % config.photoEvery === 0) {
    const scan = config.photoFiles[n % Math.max(1, config.photoFiles.length)];
    const photo = scan === undefined ? syntheticActa(config.photoBytes).bytes : new Uint8Array(readFileSync(scan));
    const item = await device.acta({ table, text, photos: [photo] });
    const photos = item.photos.map((p) => ({ photoId: p.photoId, sha256: sha256Hex(photo) }));
    history.append({ t: "queued", volunteer: name, n, id: item.id, seq: item.seq, kind: item.kind, photos });
  } else {
    const item = await device.report(table, text);
    history.append({ t: "queued", volunteer: name, n, id: item.id, seq: item.seq, kind: item.kind, photos: [] });
  }
  n++;
  await sync();
  await sleep(Math.floor(Math.random() * config.pauseMs));
}
for (;;) {
  const { outbox } = await device.status();
  if (outbox.envelopes === 0 && outbox.photos === 0) break;
  await sync();
}
history.append({ t: "done", volunteer: name });
history.close();
// Idle keep-alive connections would hold the process for a while: everything is recorded, go.
process.exit(0);
