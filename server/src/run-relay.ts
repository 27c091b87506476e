// `testigo relay`: reads flags and TESTIGO_* variables, opens the store, listens, and shuts down
// gracefully on SIGTERM/SIGINT. The only module that listens; main.ts and the `testigo` command
// call runRelay. It never calls process.exit: it resolves with the exit code.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DEFAULT_RELAY_RETENTION_MS, initSodium } from "@testigo/protocol";
import { buildApp } from "./app.js";
import { ConfigError, loadConfig, type RelayConfig } from "./config/config.js";
import { type RawSettings, readEnv } from "./config/env.js";
import { createLogger } from "./logger.js";
import { openStore } from "./open-store.js";
import { registrationToken } from "./registration-token.js";
import { HOUR_MS } from "./time.js";

export const RELAY_USAGE = `usage: testigo relay [--host 127.0.0.1] [--port 8787] [--data DIR]
                     [--redis URL | --redis-cluster URL,URL,...] [--tls-cert F --tls-key F] [--log-level LEVEL]
                     [--coordinator-rate-capacity N] [--coordinator-rate-refill-per-second N]
Environment: TESTIGO_HOST, TESTIGO_PORT, TESTIGO_DATA, TESTIGO_REDIS, TESTIGO_REDIS_CLUSTER,
TESTIGO_RELAY_TOKEN (the operator's registration token), TESTIGO_LOG_LEVEL, TESTIGO_RATE_CAPACITY,
TESTIGO_RATE_REFILL_PER_SECOND, TESTIGO_COORDINATOR_RATE_CAPACITY,
TESTIGO_COORDINATOR_RATE_REFILL_PER_SECOND, TESTIGO_JSON_BODY_LIMIT, TESTIGO_REQUEST_TIMEOUT_MS. Flags win.`;

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface RelayIo {
  /** Start-up messages (standard output by default). */
  readonly print?: (line: string) => void;
  /** Errors (standard error by default). */
  readonly printError?: (line: string) => void;
  /** Environment variables as read by config/env.ts (tests pass their own). */
  readonly env?: RawSettings;
  /** Resolves when the relay should stop (SIGTERM/SIGINT by default). */
  readonly stopSignal?: Promise<unknown>;
}

/** Flags as raw settings; throws ConfigError for an unknown flag or a missing value. */
export function parseRelayFlags(argv: readonly string[]): Partial<RawSettings> & { help?: boolean } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
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
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new ConfigError([(err as Error).message]);
  }
  const text = (key: string) => (typeof values[key] === "string" ? (values[key] as string) : undefined);
  const flags: Partial<RawSettings> & { help?: boolean } = {};
  const set = (key: keyof RawSettings, value: string | undefined) => {
    if (value !== undefined) flags[key] = value;
  };
  set("host", text("host"));
  set("port", text("port"));
  set("data", text("data"));
  set("redis", text("redis"));
  set("redisCluster", text("redis-cluster"));
  set("tlsCert", text("tls-cert"));
  set("tlsKey", text("tls-key"));
  set("logLevel", text("log-level"));
  set("coordinatorRateCapacity", text("coordinator-rate-capacity"));
  set("coordinatorRateRefillPerSecond", text("coordinator-rate-refill-per-second"));
  if (values.help === true) flags.help = true;
  return flags;
}

/** Reads the PEM certificate and key at start-up, so a bad path fails now and says which file. */
export function readTlsFiles(files: { readonly certFile: string; readonly keyFile: string }): {
  cert: Uint8Array;
  key: Uint8Array;
} {
  const read = (path: string, what: string, flag: string): Uint8Array => {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw new Error(`cannot read the TLS ${what} ${path} (${flag}): ${typeof code === "string" ? code : "error"}`);
    }
    if (!Buffer.from(bytes).toString("latin1").includes("-----BEGIN ")) {
      throw new Error(`the TLS ${what} ${path} (${flag}) is not PEM (expected "-----BEGIN ...")`);
    }
    return bytes;
  };
  return { cert: read(files.certFile, "certificate", "--tls-cert"), key: read(files.keyFile, "key", "--tls-key") };
}

function signalPromise(): { promise: Promise<string>; dispose: () => void } {
  let resolveSignal: (signal: string) => void = () => undefined;
  const promise = new Promise<string>((resolve) => {
    resolveSignal = resolve;
  });
  const onTerm = () => resolveSignal("SIGTERM");
  const onInt = () => resolveSignal("SIGINT");
  process.once("SIGTERM", onTerm);
  process.once("SIGINT", onInt);
  return {
    promise,
    dispose: () => {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
    },
  };
}

/** Runs the relay until it is told to stop; resolves with the process exit code. */
export async function runRelay(argv: readonly string[], io: RelayIo = {}): Promise<number> {
  const print = io.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const printError = io.printError ?? ((line: string) => process.stderr.write(`${line}\n`));
  let config: RelayConfig;
  try {
    const { help, ...flags } = parseRelayFlags(argv);
    if (help === true) {
      print(RELAY_USAGE);
      return EXIT_OK;
    }
    config = loadConfig({ ...(io.env ?? readEnv()), ...flags });
  } catch (err) {
    if (err instanceof ConfigError) {
      printError(`testigo relay: ${err.message}\n${RELAY_USAGE}`);
      return EXIT_USAGE;
    }
    throw err;
  }
  let tls: { cert: Uint8Array; key: Uint8Array } | undefined;
  try {
    tls = config.tls === undefined ? undefined : readTlsFiles(config.tls);
  } catch (err) {
    printError(`testigo relay: ${(err as Error).message}`);
    return EXIT_FAILURE;
  }

  await initSodium();
  const logger = createLogger({ level: config.logLevel });
  let opened: Awaited<ReturnType<typeof openStore>>;
  let token: ReturnType<typeof registrationToken>;
  try {
    token = registrationToken(config.dataDir, config.relayToken);
    opened = await openStore(config);
  } catch (err) {
    printError(`testigo relay: cannot start: ${(err as Error).message}`);
    return EXIT_FAILURE;
  }

  let app: ReturnType<typeof buildApp>;
  try {
    app = buildApp(
      { registrationToken: token.token, jsonBodyLimit: config.jsonBodyLimit, rateLimit: config.rateLimit },
      {
        store: opened.store,
        logger,
        ...(tls === undefined ? {} : { tls }),
        timeouts: {
          connectionMs: config.requestTimeoutMs,
          requestMs: config.requestTimeoutMs,
          keepAliveMs: config.keepAliveTimeoutMs,
          // Slowloris: headers must arrive quickly; the whole request within requestTimeoutMs.
          headersMs: config.headersTimeoutMs,
        },
      },
    );
  } catch (err) {
    // e.g. a TLS key that does not match its certificate.
    printError(`testigo relay: cannot start: ${(err as Error).message}`);
    await opened.store.close();
    return EXIT_FAILURE;
  }

  const signals = io.stopSignal === undefined ? signalPromise() : undefined;
  try {
    // The listen message is printed below; fastify's own would log the address.
    await app.listen({ host: config.host, port: config.port, listenTextResolver: () => "relay listening" });
  } catch (err) {
    signals?.dispose();
    printError(`testigo relay: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
    await app.close();
    await opened.store.close();
    return EXIT_FAILURE;
  }

  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  print(`testigo relay listening on ${tls === undefined ? "http" : "https"}://${host}:${port}`);
  print(`store: ${opened.description}`);
  print(
    token.file === undefined
      ? "registration token: from TESTIGO_RELAY_TOKEN"
      : `registration token: ${token.file} (owner-only; give it to campaign organisers, never publish it)`,
  );

  // Retention: whatever is older than the retention period goes, acked or not.
  const retention = setInterval(() => {
    const now = Date.now();
    opened.store.expire(now - DEFAULT_RELAY_RETENTION_MS, now).catch((err: unknown) => {
      logger.error({ err }, "retention sweep failed");
    });
  }, HOUR_MS);
  retention.unref();

  await (io.stopSignal ?? signals?.promise);
  signals?.dispose();
  clearInterval(retention);
  print("testigo relay: shutting down");
  try {
    await app.close(); // waits for requests in flight; new ones get 503
    await opened.store.close();
  } catch (err) {
    printError(`testigo relay: error while shutting down: ${(err as Error).message}`);
    return EXIT_FAILURE;
  }
  print("testigo relay: stopped");
  return EXIT_OK;
}
