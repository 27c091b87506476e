// @testigo/server: the relay as a library (buildApp for tests and embedding, runRelay for the CLI).
export { type AppDeps, buildApp } from "./app.js";
export { type AppConfig, appConfig, ConfigError, loadConfig, type RelayConfig } from "./config/config.js";
export { readEnv } from "./config/env.js";
export { RelayError, toWireError } from "./errors.js";
export { createLogger, type RelayLogger } from "./logger.js";
export { Metrics } from "./metrics.js";
export { openStore, safeRedisUrl } from "./open-store.js";
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parseRelayFlags, RELAY_USAGE, runRelay } from "./run-relay.js";
export type { Store } from "./store/store.js";
