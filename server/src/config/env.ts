// The ONLY module that reads process.env. It copies the TESTIGO_* variables into plain strings;
// config.ts validates them. Secrets (the registration token) are read here and nowhere else.

/** Raw settings as text, from flags or the environment; undefined when not given. */
export interface RawSettings {
  host: string | undefined;
  port: string | undefined;
  data: string | undefined;
  redis: string | undefined;
  redisCluster: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  relayToken: string | undefined;
  logLevel: string | undefined;
  rateCapacity: string | undefined;
  rateRefillPerSecond: string | undefined;
  coordinatorRateCapacity: string | undefined;
  coordinatorRateRefillPerSecond: string | undefined;
  jsonBodyLimit: string | undefined;
  requestTimeoutMs: string | undefined;
}

/** Which variable feeds which setting (also used to name the culprit in config errors). */
export const ENV_NAMES: Readonly<Record<keyof RawSettings, string>> = {
  host: "TESTIGO_HOST",
  port: "TESTIGO_PORT",
  data: "TESTIGO_DATA",
  redis: "TESTIGO_REDIS",
  redisCluster: "TESTIGO_REDIS_CLUSTER",
  tlsCert: "TESTIGO_TLS_CERT",
  tlsKey: "TESTIGO_TLS_KEY",
  relayToken: "TESTIGO_RELAY_TOKEN",
  logLevel: "TESTIGO_LOG_LEVEL",
  rateCapacity: "TESTIGO_RATE_CAPACITY",
  rateRefillPerSecond: "TESTIGO_RATE_REFILL_PER_SECOND",
  coordinatorRateCapacity: "TESTIGO_COORDINATOR_RATE_CAPACITY",
  coordinatorRateRefillPerSecond: "TESTIGO_COORDINATOR_RATE_REFILL_PER_SECOND",
  jsonBodyLimit: "TESTIGO_JSON_BODY_LIMIT",
  requestTimeoutMs: "TESTIGO_REQUEST_TIMEOUT_MS",
};

export function readEnv(env: NodeJS.ProcessEnv = process.env): RawSettings {
  const get = (key: keyof RawSettings): string | undefined => {
    const value = env[ENV_NAMES[key]];
    return value === undefined || value === "" ? undefined : value;
  };
  return {
    host: get("host"),
    port: get("port"),
    data: get("data"),
    redis: get("redis"),
    redisCluster: get("redisCluster"),
    tlsCert: get("tlsCert"),
    tlsKey: get("tlsKey"),
    relayToken: get("relayToken"),
    logLevel: get("logLevel"),
    rateCapacity: get("rateCapacity"),
    rateRefillPerSecond: get("rateRefillPerSecond"),
    coordinatorRateCapacity: get("coordinatorRateCapacity"),
    coordinatorRateRefillPerSecond: get("coordinatorRateRefillPerSecond"),
    jsonBodyLimit: get("jsonBodyLimit"),
    requestTimeoutMs: get("requestTimeoutMs"),
  };
}
