// A real relay (buildApp on a real store: SQLite in a temporary folder, or a real redis-server)
// with a clock the test controls, driven over inject() or real loopback HTTP, plus a "world" of
// real campaigns, coordinator devices and volunteers made with the protocol package only.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before } from "node:test";
import {
  API,
  apiPath,
  createRoster,
  type DeviceKeys,
  generateDeviceKeys,
  generateSigningKeyPair,
  initSodium,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  pseudonymFromKeys,
  publicKeysOf,
  RELAY_ERROR_CODES,
  type RelayErrorCode,
  type SignedDocument,
  type SigningKeyPair,
  signAuthStatement,
} from "@testigo/protocol";
import { type AppConfig, appConfig, buildApp, createLogger, loadConfig, openStore, readEnv } from "@testigo/server";
import type { StoreDigest, StoreDigestOptions, StoreTarget } from "@testigo/server/testing";
import { bearer, enrollPayload, type RedisProcess, startRedis, storeDigest } from "@testigo/server/testing";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";

// The same envelope, enrollment and header helpers as the server's own tests.
export { bearer, enrollPayload, makeEnvelope, octet } from "@testigo/server/testing";

export const OPERATOR_TOKEN = "hostile-operator-token-0123456789-abcdefghijklmnop";
/** The relay's clock starts here; tests move it (expired sessions) and put it back. */
export const START = Date.UTC(2024, 6, 28, 18, 0, 0);

export interface HostileRelay {
  readonly app: FastifyInstance;
  readonly target: StoreTarget;
  readonly logs: string[];
  now: number;
  /** Digest of everything the store holds (see @testigo/server/testing storeDigest). */
  digest(options?: StoreDigestOptions): Promise<StoreDigest>;
  close(): Promise<void>;
}

export interface HostileRelayOptions {
  /** A Redis URL; the embedded SQLite store in a temporary folder otherwise. */
  readonly redisUrl?: string;
  readonly config?: Partial<AppConfig>;
  readonly timeouts?: { readonly connectionMs: number; readonly requestMs: number; readonly keepAliveMs: number };
}

export async function startHostileRelay(options: HostileRelayOptions = {}): Promise<HostileRelay> {
  await initSodium();
  const dir = mkdtempSync(join(tmpdir(), "testigo-hostile-"));
  const env: Record<string, string> = { TESTIGO_DATA: dir };
  if (options.redisUrl !== undefined) env.TESTIGO_REDIS = options.redisUrl;
  const { store } = await openStore(loadConfig(readEnv(env)));
  const target: StoreTarget =
    options.redisUrl === undefined
      ? { kind: "sqlite", file: join(dir, "relay.sqlite") }
      : { kind: "redis", urls: [options.redisUrl] };
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  let app: FastifyInstance | undefined;
  const relay: HostileRelay = {
    get app(): FastifyInstance {
      if (app === undefined) throw new Error("relay not built");
      return app;
    },
    target,
    logs,
    now: START,
    digest: (digestOptions) => storeDigest(target, digestOptions),
    async close() {
      await app?.close();
      await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  app = buildApp(appConfig({ registrationToken: OPERATOR_TOKEN, ...options.config }), {
    store,
    logger: createLogger({ level: "info", stream }),
    clock: () => relay.now,
    ...(options.timeouts === undefined ? {} : { timeouts: options.timeouts }),
  });
  await app.ready();
  return relay;
}

/**
 * Declares a suite twice: on a relay over the embedded SQLite store, then over one real
 * redis-server that the test file starts before its first test and stops after its last.
 */
export function onSqliteAndRedis(
  declare: (store: "SQLite" | "Redis", start: () => Promise<HostileRelay>) => void,
  config: Partial<AppConfig>,
): void {
  declare("SQLite", () => startHostileRelay({ config }));
  let redis: RedisProcess | undefined;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  declare("Redis", () => {
    if (redis === undefined) throw new Error("redis not started");
    return startHostileRelay({ redisUrl: redis.url, config });
  });
}

// --- a world of campaigns, devices and volunteers

export interface Device {
  readonly id: string;
  readonly keys: DeviceKeys;
  token: string;
}

export interface Volunteer {
  readonly keys: DeviceKeys;
  readonly pseudonym: string;
  token: string;
}

export interface Campaign {
  readonly campaignId: string;
  readonly root: SigningKeyPair;
  readonly devices: readonly Device[];
  readonly rosterDoc: SignedDocument;
}

async function ok(res: LightMyRequestResponse, status: number, what: string): Promise<LightMyRequestResponse> {
  if (res.statusCode !== status) throw new Error(`${what} failed: ${res.statusCode} ${res.body}`);
  return res;
}

export function makeRoster(root: SigningKeyPair, devices: readonly { id: string; keys: DeviceKeys }[], serial = 1) {
  return createRoster({
    root,
    serial,
    issuedAt: START,
    devices: devices.map((d) => ({ id: d.id, ...publicKeysOf(d.keys) })),
  });
}

export async function openSession(
  relay: HostileRelay,
  campaignId: string,
  role: "coordinator" | "volunteer",
  principal: string,
  signingKey: Uint8Array,
): Promise<string> {
  const ch = await ok(await relay.app.inject({ method: "POST", url: API.challenge.path }), 201, "challenge");
  const statement = { campaignId, role, principal, challenge: (ch.json() as { challenge: string }).challenge };
  const res = await relay.app.inject({
    method: API.session.method,
    url: API.session.path,
    payload: { ...statement, signature: signAuthStatement(statement, signingKey) },
  });
  return ((await ok(res, 201, "session")).json() as { token: string }).token;
}

export async function registerCampaign(relay: HostileRelay, deviceCount = 2): Promise<Campaign> {
  const root = generateSigningKeyPair();
  const devices = Array.from({ length: deviceCount }, (_, i) => ({
    id: `laptop-${i + 1}`,
    keys: generateDeviceKeys(),
    token: "",
  }));
  const rosterDoc = makeRoster(root, devices);
  const res = await relay.app.inject({
    method: API.registerCampaign.method,
    url: API.registerCampaign.path,
    headers: bearer(OPERATOR_TOKEN),
    payload: { roster: rosterDoc },
  });
  const { campaignId } = (await ok(res, 201, "register")).json() as { campaignId: string };
  for (const device of devices) {
    device.token = await openSession(relay, campaignId, "coordinator", device.id, device.keys.signing.privateKey);
  }
  return { campaignId, root, devices, rosterDoc };
}

export function coordinator(campaign: Campaign): Device {
  const device = campaign.devices[0];
  if (device === undefined) throw new Error("campaign without devices");
  return device;
}

export async function enrollVolunteer(relay: HostileRelay, campaign: Campaign): Promise<Volunteer> {
  const redeemToken = inviteRedeemToken(randomBytes(16));
  await ok(
    await relay.app.inject({
      method: API.addInvites.method,
      url: apiPath(API.addInvites, { campaignId: campaign.campaignId }),
      headers: bearer(coordinator(campaign).token),
      payload: { invites: [{ storedHash: inviteStoredHashBase64url(redeemToken), expiresAt: relay.now + 86_400_000 }] },
    }),
    201,
    "invite",
  );
  const keys = generateDeviceKeys();
  await ok(
    await relay.app.inject({
      method: API.enroll.method,
      url: apiPath(API.enroll, { campaignId: campaign.campaignId }),
      payload: enrollPayload(redeemToken, keys),
    }),
    201,
    "enroll",
  );
  const pseudonym = pseudonymFromKeys(publicKeysOf(keys));
  const token = await openSession(relay, campaign.campaignId, "volunteer", pseudonym, keys.signing.privateKey);
  return { keys, pseudonym, token };
}

// --- the documented error codes

/** Code → HTTP status, read from the table in docs/errors.md (the contract clients read). */
export function documentedErrors(): ReadonlyMap<RelayErrorCode, number> {
  const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
  const out = new Map<RelayErrorCode, number>();
  for (const match of doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) {
    const code = match[1] as RelayErrorCode;
    if (RELAY_ERROR_CODES.includes(code)) out.set(code, Number(match[2]));
  }
  return out;
}

/** Own property names of Object.prototype (a pollution check compares two of these). */
export function prototypeKeys(): string {
  return Object.getOwnPropertyNames(Object.prototype).sort().join(",");
}

/** A seed for fast-check: FC_SEED replays one; printed so a failure can be replayed. */
export function fuzzSeed(what: string): number {
  const given = process.env.FC_SEED;
  const seed = given === undefined || given === "" ? Math.floor(Math.random() * 2 ** 31) : Number(given);
  console.log(`${what}: fast-check seed ${seed} (replay with FC_SEED=${seed})`);
  return seed;
}

/** A positive integer from the environment, or the default. */
export function envCount(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}
