// `testigo relay`: runs the relay server (the @testigo/server package) in this process.
import type { Command } from "../command.js";

export const relayCommand: Command = {
  path: ["relay"],
  summary: "run the relay (embedded store by default, or Redis / Redis Cluster)",
  usage:
    "testigo relay [--host 127.0.0.1] [--port 8787] [--data DIR] [--redis URL | --redis-cluster URL,URL,...] [--tls-cert F --tls-key F]",
  help: [
    "Runs the relay until SIGTERM or SIGINT, then shuts down gracefully.",
    "",
    "  --host H            address to listen on (default 127.0.0.1; TESTIGO_HOST)",
    "  --port P            port (default 8787; TESTIGO_PORT)",
    "  --data DIR          data folder: embedded database and registration token (default ./testigo-data; TESTIGO_DATA)",
    "  --redis URL         use Redis instead of the embedded store (TESTIGO_REDIS; put a password in the variable, not the flag)",
    "  --redis-cluster U,U use a Redis Cluster (TESTIGO_REDIS_CLUSTER)",
    "  --tls-cert F --tls-key F  serve HTTPS/WSS directly (TESTIGO_TLS_CERT, TESTIGO_TLS_KEY)",
    "  --log-level LEVEL   fatal|error|warn|info|debug|trace|silent (default info; TESTIGO_LOG_LEVEL)",
    "  --coordinator-rate-capacity N, --coordinator-rate-refill-per-second R",
    "                      a coordinator device's request quota (default 1200 burst, 100/s;",
    "                      TESTIGO_COORDINATOR_RATE_CAPACITY, TESTIGO_COORDINATOR_RATE_REFILL_PER_SECOND)",
    "",
    "Variables only: TESTIGO_RATE_CAPACITY and TESTIGO_RATE_REFILL_PER_SECOND (a volunteer's quota,",
    "default 120 burst, 10/s), TESTIGO_JSON_BODY_LIMIT, TESTIGO_REQUEST_TIMEOUT_MS. Every value is",
    "checked at start-up; a bad one stops the relay with a message naming it (docs/operator-guide.md).",
    "",
    "The operator's registration token comes from TESTIGO_RELAY_TOKEN, or the relay makes one in",
    "DIR/registration-token (owner-only) and says where on start-up.",
  ].join("\n"),
  flags: {
    host: { type: "string" },
    port: { type: "string" },
    data: { type: "string" },
    redis: { type: "string" },
    "redis-cluster": { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "log-level": { type: "string" },
    "coordinator-rate-capacity": { type: "string" },
    "coordinator-rate-refill-per-second": { type: "string" },
  },
  async run(_args, context) {
    // Imported on demand: the relay's dependencies (fastify, SQLite, Redis) are not needed by
    // the volunteer and coordinator commands.
    const { readEnv, runRelay } = await import("@testigo/server");
    return runRelay(context.argv.slice(1), {
      env: readEnv(context.env as NodeJS.ProcessEnv),
      print: (line) => context.stdout.write(`${line}\n`),
      printError: (line) => context.stderr.write(`${line}\n`),
    });
  },
};
