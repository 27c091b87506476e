// The relay on the embedded SQLite store with its write-fault injector armed from outside:
// `node test/dist/fault/fault-relay.js --port P --data DIR` (token in TESTIGO_RELAY_TOKEN) builds
// the same fastify app as `testigo relay` (buildApp) on a SqliteStore opened with a
// WriteFaultInjector; SIGUSR2 makes the store's next write transaction fail like an fsync error.
// The store then refuses everything (STORE_UNAVAILABLE, /readyz 503) until the process restarts.
// GET /fault-test/status answers {"fired", "acceptedAfterFailure"}: how many POST/PUT requests that
// arrived after the failed write were answered 2xx — an acknowledgement that must never happen
// (the stateless auth challenge, which stores nothing, aside).
// `testigo relay` does not expose the injector, hence this entry point for the fault tests only.
import { parseArgs } from "node:util";
import { API, initSodium } from "@testigo/protocol";
import { appConfig, buildApp, createLogger } from "@testigo/server";
import { SqliteStore, WriteFaultInjector } from "@testigo/server/testing";
import { FAULT_STATUS_PATH, type FaultStatus } from "./fault-status.js";

const { values } = parseArgs({
  options: { port: { type: "string" }, data: { type: "string" } },
  strict: true,
});
const token = process.env.TESTIGO_RELAY_TOKEN;
if (values.port === undefined || values.data === undefined || token === undefined) {
  throw new Error("usage: TESTIGO_RELAY_TOKEN=… fault-relay.js --port P --data DIR");
}

/** Remembers that an armed fault was consumed (a write transaction failed). */
class RecordingInjector extends WriteFaultInjector {
  fired = false;
  override consume(): boolean {
    const fire = super.consume();
    if (fire) this.fired = true;
    return fire;
  }
}

await initSodium();
const faults = new RecordingInjector();
const store = await SqliteStore.open({ dataDir: values.data, faults });
const app = buildApp(
  appConfig({ registrationToken: token, rateLimit: { capacity: 100_000, refillPerSecond: 10_000 } }),
  { store, logger: createLogger({ level: "warn" }) },
);
const afterFailure = new WeakSet<object>();
let acceptedAfterFailure = 0;
app.addHook("onRequest", async (request) => {
  if (faults.fired) afterFailure.add(request);
});
app.addHook("onResponse", async (request, reply) => {
  // Issuing an auth challenge stores nothing (challenges are stateless, sealed by the relay): its
  // 200 acknowledges no data, so it is not counted. Every other POST/PUT writes to the store.
  const write =
    (request.method === "POST" || request.method === "PUT") && request.routeOptions.url !== API.challenge.path;
  if (write && afterFailure.has(request) && reply.statusCode >= 200 && reply.statusCode < 300) acceptedAfterFailure++;
});
app.get(FAULT_STATUS_PATH, async (): Promise<FaultStatus> => ({ fired: faults.fired, acceptedAfterFailure }));
process.on("SIGUSR2", () => {
  faults.failNextWrite();
  process.stdout.write("fault-relay: the next write will fail\n");
});
process.once("SIGTERM", () => {
  void app
    .close()
    .then(() => store.close())
    .finally(() => process.exit(0));
});
await app.listen({ host: "127.0.0.1", port: Number(values.port) });
process.stdout.write(`fault-relay listening on http://127.0.0.1:${values.port}\n`);
