// Validates raw settings (flags over environment) into the relay's configuration: defaults,
// types and cross-field checks, with one clear line per bad value.
import { LIVE_WINDOW_ITEMS } from "@testigo/protocol";
import { z } from "zod";
import { ENV_NAMES, type RawSettings } from "./env.js";

/** What buildApp needs (no addresses, no files): tests build this with `appConfig()`. */
export interface AppConfig {
  /** The operator's registration token; POST /v1/campaigns needs it. */
  readonly registrationToken: string;
  readonly jsonBodyLimit: number;
  readonly rateLimit: {
    readonly capacity: number;
    readonly refillPerSecond: number;
    /**
     * Coordinator devices' own bucket (they drain a whole campaign's inbox and photos): larger
     * than a volunteer's. When absent, coordinators get the volunteer quota above.
     */
    readonly coordinator?: RateQuota;
    /** How often bucket levels are merged into the store (default 10 s; tests shrink it). */
    readonly mergeIntervalMs?: number;
  };
  /** Live inbox limits; defaults in LIVE_DEFAULTS (tests shrink them). */
  readonly live?: Partial<LiveLimits>;
}

export interface RateQuota {
  readonly capacity: number;
  readonly refillPerSecond: number;
}

export interface LiveLimits {
  /** Unsent bytes a socket may hold; above it pushes wait for the client to read. */
  readonly maxBufferedBytes: number;
  /** A socket that stays above maxBufferedBytes this long is dropped with 4008 slow-consumer. */
  readonly drainTimeoutMs: number;
  /** Pushed-but-unacked items per socket before the relay waits for acks (nothing is buffered meanwhile). */
  readonly windowItems: number;
  /** Heartbeat: ping, re-check the session, and re-read the inbox in case a notification was lost. */
  readonly tickMs: number;
}

export const LIVE_DEFAULTS: LiveLimits = {
  maxBufferedBytes: 4 * 1024 * 1024,
  drainTimeoutMs: 10_000,
  windowItems: LIVE_WINDOW_ITEMS,
  tickMs: 15_000,
};

export type StoreChoice =
  | { readonly kind: "sqlite" }
  | { readonly kind: "redis"; readonly url: string }
  | { readonly kind: "redis-cluster"; readonly urls: readonly string[] };

export interface RelayConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly store: StoreChoice;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** From TESTIGO_RELAY_TOKEN; when undefined the relay uses (or makes) <dataDir>/registration-token. */
  readonly relayToken: string | undefined;
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  readonly jsonBodyLimit: number;
  readonly rateLimit: { readonly capacity: number; readonly refillPerSecond: number; readonly coordinator: RateQuota };
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULTS = {
  host: "127.0.0.1",
  port: 8787,
  dataDir: "./testigo-data",
  logLevel: "info",
  jsonBodyLimit: 256 * 1024,
  rateCapacity: 120,
  rateRefillPerSecond: 10,
  coordinatorRateCapacity: 1_200,
  coordinatorRateRefillPerSecond: 100,
  requestTimeoutMs: 30_000,
} as const;

const intText = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const redisUrl = z
  .string()
  .refine((text) => /^rediss?:\/\/[^\s]+$/.test(text) && URL.canParse(text), "must be a redis:// or rediss:// URL");

const settings = z
  .object({
    host: z.string().min(1).max(255).default(DEFAULTS.host),
    port: intText(0, 65535).optional(),
    data: z.string().min(1).default(DEFAULTS.dataDir),
    redis: redisUrl.optional(),
    redisCluster: z
      .string()
      .transform((text) => text.split(",").map((part) => part.trim()))
      .pipe(z.array(redisUrl).min(1))
      .optional(),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    relayToken: z
      .string()
      .min(32, "must be at least 32 characters (use a random token)")
      .max(512)
      .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces")
      .optional(),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default(DEFAULTS.logLevel),
    rateCapacity: intText(1, 1_000_000).optional(),
    rateRefillPerSecond: intText(1, 1_000_000).optional(),
    coordinatorRateCapacity: intText(1, 1_000_000).optional(),
    coordinatorRateRefillPerSecond: intText(1, 1_000_000).optional(),
    jsonBodyLimit: intText(1024, 16 * 1024 * 1024).optional(),
    requestTimeoutMs: intText(1000, 600_000).optional(),
  })
  .superRefine((value, ctx) => {
    if (value.redis !== undefined && value.redisCluster !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["redisCluster"],
        message: "give either --redis or --redis-cluster, not both",
      });
    }
    if ((value.tlsCert === undefined) !== (value.tlsKey === undefined)) {
      ctx.addIssue({ code: "custom", path: ["tlsKey"], message: "--tls-cert and --tls-key go together" });
    }
  });

const FLAG_NAMES: Readonly<Record<keyof RawSettings, string>> = {
  host: "--host",
  port: "--port",
  data: "--data",
  redis: "--redis",
  redisCluster: "--redis-cluster",
  tlsCert: "--tls-cert",
  tlsKey: "--tls-key",
  relayToken: "",
  logLevel: "--log-level",
  rateCapacity: "",
  rateRefillPerSecond: "",
  coordinatorRateCapacity: "--coordinator-rate-capacity",
  coordinatorRateRefillPerSecond: "--coordinator-rate-refill-per-second",
  jsonBodyLimit: "",
  requestTimeoutMs: "",
};

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "CONFIG_INVALID" as const;
  constructor(readonly problems: readonly string[]) {
    super(`invalid relay configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

function settingName(key: string): string {
  const k = key as keyof RawSettings;
  const flag = FLAG_NAMES[k];
  const env = ENV_NAMES[k];
  if (env === undefined) return key;
  return flag ? `${flag} / ${env}` : env;
}

/** A value to echo in an error: any URL password (redis://user:PASSWORD@host) replaced by "***". */
function withoutPasswords(value: unknown): unknown {
  return typeof value === "string" ? value.replace(/(\/\/[^/@\s:]*:)[^@\s]*@/g, "$1***@") : value;
}

/** Validates settings; throws ConfigError listing every bad value (secrets are never echoed). */
export function loadConfig(raw: RawSettings): RelayConfig {
  const defined = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const parsed = settings.safeParse(defined);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const key = String(issue.path[0] ?? "");
        const given =
          key === "relayToken" ? "" : ` (got ${JSON.stringify(withoutPasswords(raw[key as keyof RawSettings]))})`;
        return `${settingName(key)}: ${issue.message}${given}`;
      }),
    );
  }
  const v = parsed.data;
  const requestTimeoutMs = v.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
  return {
    host: v.host,
    port: v.port ?? DEFAULTS.port,
    dataDir: v.data,
    store:
      v.redis !== undefined
        ? { kind: "redis", url: v.redis }
        : v.redisCluster !== undefined
          ? { kind: "redis-cluster", urls: v.redisCluster }
          : { kind: "sqlite" },
    tls: v.tlsCert !== undefined && v.tlsKey !== undefined ? { certFile: v.tlsCert, keyFile: v.tlsKey } : undefined,
    relayToken: v.relayToken,
    logLevel: v.logLevel,
    jsonBodyLimit: v.jsonBodyLimit ?? DEFAULTS.jsonBodyLimit,
    rateLimit: {
      capacity: v.rateCapacity ?? DEFAULTS.rateCapacity,
      refillPerSecond: v.rateRefillPerSecond ?? DEFAULTS.rateRefillPerSecond,
      coordinator: {
        capacity: v.coordinatorRateCapacity ?? DEFAULTS.coordinatorRateCapacity,
        refillPerSecond: v.coordinatorRateRefillPerSecond ?? DEFAULTS.coordinatorRateRefillPerSecond,
      },
    },
    requestTimeoutMs,
    // Slowloris: a client must send its headers quickly, and the whole request within requestTimeoutMs.
    headersTimeoutMs: Math.min(10_000, requestTimeoutMs),
    keepAliveTimeoutMs: 5_000,
  };
}

/** An AppConfig with defaults (for tests and embedding). */
export function appConfig(overrides: Partial<AppConfig> & { registrationToken: string }): AppConfig {
  return {
    jsonBodyLimit: DEFAULTS.jsonBodyLimit,
    rateLimit: {
      capacity: DEFAULTS.rateCapacity,
      refillPerSecond: DEFAULTS.rateRefillPerSecond,
      coordinator: {
        capacity: DEFAULTS.coordinatorRateCapacity,
        refillPerSecond: DEFAULTS.coordinatorRateRefillPerSecond,
      },
    },
    ...overrides,
  };
}
