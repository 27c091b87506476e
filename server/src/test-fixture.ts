// A relay on a real SqliteStore in a temporary folder, driven with inject(), plus helpers that
// make real keys, rosters, invites and envelopes with the protocol package. Tests only.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import {
  API,
  apiPath,
  createRoster,
  type DeviceKeys,
  type EnrollRequest,
  encodeEnvelopeHeader,
  envelopeLength,
  generateDeviceKeys,
  generateSigningKeyPair,
  initSodium,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  OCTET_STREAM,
  pseudonymFromKeys,
  publicKeysOf,
  randomBytes,
  type SigningKeyPair,
  signAuthStatement,
  signEnrollment,
  signEnrollmentDuress,
  sodium,
  toBase64url,
  utf8,
} from "@testigo/protocol";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { buildApp } from "./app.js";
import { type AppConfig, appConfig } from "./config/config.js";
import { createLogger } from "./logger.js";
import { SqliteStore } from "./store/sqlite-store.js";

export const OPERATOR_TOKEN = "operator-token-0123456789-abcdefghijklmnop";

export interface Relay {
  readonly app: FastifyInstance;
  readonly store: SqliteStore;
  readonly logs: string[];
  readonly dir: string;
  now: number;
  close(): Promise<void>;
}

export async function startRelay(overrides: Partial<AppConfig> = {}, clock?: () => number): Promise<Relay> {
  await initSodium();
  const dir = mkdtempSync(join(tmpdir(), "testigo-relay-"));
  const store = await SqliteStore.open({ dataDir: dir });
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const relay: Relay = {
    app: undefined as unknown as FastifyInstance,
    store,
    logs,
    dir,
    now: Date.UTC(2024, 6, 28, 18, 0, 0),
    async close() {
      await relay.app.close();
      await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  (relay as { app: FastifyInstance }).app = buildApp(appConfig({ registrationToken: OPERATOR_TOKEN, ...overrides }), {
    store,
    logger: createLogger({ level: "info", stream }),
    clock: clock ?? (() => relay.now),
  });
  return relay;
}

export interface Campaign {
  readonly campaignId: string;
  readonly root: SigningKeyPair;
  readonly devices: readonly { readonly id: string; readonly keys: DeviceKeys }[];
  readonly rosterDoc: ReturnType<typeof createRoster>;
}

export function makeCampaign(deviceCount = 2, serial = 1, root = generateSigningKeyPair(), now = Date.now()): Campaign {
  const devices = Array.from({ length: deviceCount }, (_, i) => ({
    id: `laptop-${i + 1}`,
    keys: generateDeviceKeys(),
  }));
  const rosterDoc = createRoster({
    root,
    serial,
    issuedAt: now,
    devices: devices.map((d) => ({ id: d.id, ...publicKeysOf(d.keys) })),
  });
  const payload = JSON.parse(Buffer.from(rosterDoc.payload, "base64url").toString("utf8")) as { campaignId: string };
  return { campaignId: payload.campaignId, root, devices, rosterDoc };
}

export async function registerCampaign(relay: Relay, campaign = makeCampaign()): Promise<Campaign> {
  const res = await relay.app.inject({
    method: API.registerCampaign.method,
    url: API.registerCampaign.path,
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    payload: { roster: campaign.rosterDoc },
  });
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`);
  return campaign;
}

export async function challenge(relay: Relay): Promise<string> {
  const res = await relay.app.inject({ method: API.challenge.method, url: API.challenge.path });
  if (res.statusCode !== 201) throw new Error(`challenge failed: ${res.statusCode} ${res.body}`);
  return (res.json() as { challenge: string }).challenge;
}

export async function openSession(
  relay: Relay,
  campaignId: string,
  role: "coordinator" | "volunteer",
  principal: string,
  signingKey: Uint8Array,
): Promise<LightMyRequestResponse> {
  const statement = { campaignId, role, principal, challenge: await challenge(relay) };
  return relay.app.inject({
    method: API.session.method,
    url: API.session.path,
    payload: { ...statement, signature: signAuthStatement(statement, signingKey) },
  });
}

export async function sessionToken(
  relay: Relay,
  campaignId: string,
  role: "coordinator" | "volunteer",
  principal: string,
  signingKey: Uint8Array,
): Promise<string> {
  const res = await openSession(relay, campaignId, role, principal, signingKey);
  if (res.statusCode !== 201) throw new Error(`session failed: ${res.statusCode} ${res.body}`);
  return (res.json() as { token: string }).token;
}

export async function coordinatorToken(relay: Relay, campaign: Campaign, index = 0): Promise<string> {
  const device = campaign.devices[index];
  if (device === undefined) throw new Error("no such device");
  return sessionToken(relay, campaign.campaignId, "coordinator", device.id, device.keys.signing.privateKey);
}

export interface Volunteer {
  readonly keys: DeviceKeys;
  readonly pseudonym: string;
  token: string;
}

/** Registers an invite as a coordinator, returns its redeem token. */
export async function addInvite(relay: Relay, campaign: Campaign, coordinator: string): Promise<Uint8Array> {
  const redeemToken = inviteRedeemToken(randomBytes(16));
  const res = await relay.app.inject({
    method: API.addInvites.method,
    url: apiPath(API.addInvites, { campaignId: campaign.campaignId }),
    headers: { authorization: `Bearer ${coordinator}` },
    payload: { invites: [{ storedHash: inviteStoredHashBase64url(redeemToken), expiresAt: relay.now + 86_400_000 }] },
  });
  if (res.statusCode !== 201) throw new Error(`invite failed: ${res.statusCode} ${res.body}`);
  return redeemToken;
}

/**
 * The duress key D these test keys enroll with: derived from the signing key, so the same keys
 * always make the same request (an enrollment's retry must repeat D exactly).
 */
export function fixtureDuressKey(keys: DeviceKeys): SigningKeyPair {
  return generateSigningKeyPair(sodium().crypto_generichash(32, keys.signing.privateKey, utf8("fixture duress key")));
}

/**
 * A valid enrollment body for `keys`, with a duress key (`fixtureDuressKey`) and its proof of
 * possession unless `duress` is null (a request as clients that predate the duress key send it).
 */
export function enrollPayload(
  redeemToken: Uint8Array,
  keys: DeviceKeys,
  duress: SigningKeyPair | null = fixtureDuressKey(keys),
): EnrollRequest {
  const signingKey = keys.signing.publicKey;
  const encryptionKey = keys.encryption.publicKey;
  const base = {
    redeemToken: toBase64url(redeemToken),
    signingKey: toBase64url(signingKey),
    encryptionKey: toBase64url(encryptionKey),
  };
  if (duress === null) {
    return { ...base, signature: signEnrollment(redeemToken, signingKey, encryptionKey, keys.signing.privateKey) };
  }
  const d = duress.publicKey;
  return {
    ...base,
    duressKey: toBase64url(d),
    signature: signEnrollment(redeemToken, signingKey, encryptionKey, keys.signing.privateKey, d),
    duressSignature: signEnrollmentDuress(redeemToken, signingKey, encryptionKey, d, duress.privateKey),
  };
}

export async function enrollVolunteer(relay: Relay, campaign: Campaign, coordinator: string): Promise<Volunteer> {
  const redeemToken = await addInvite(relay, campaign, coordinator);
  const keys = generateDeviceKeys();
  const res = await relay.app.inject({
    method: API.enroll.method,
    url: apiPath(API.enroll, { campaignId: campaign.campaignId }),
    payload: enrollPayload(redeemToken, keys),
  });
  if (res.statusCode !== 201) throw new Error(`enroll failed: ${res.statusCode} ${res.body}`);
  const pseudonym = pseudonymFromKeys(publicKeysOf(keys));
  const token = await sessionToken(relay, campaign.campaignId, "volunteer", pseudonym, keys.signing.privateKey);
  return { keys, pseudonym, token };
}

/** An envelope with a valid header and length (its body is random: the relay cannot tell). */
export function makeEnvelope(campaignId: string, messageId = toBase64url(randomBytes(16)), bucket = 0, recipients = 2) {
  const header = encodeEnvelopeHeader({ version: 1, campaignId, messageId, bucket, recipientCount: recipients });
  const total = envelopeLength(bucket, recipients) ?? 0;
  const bytes = new Uint8Array(total);
  bytes.set(header, 0);
  bytes.set(randomBytes(total - header.length), header.length);
  return { messageId, bytes };
}

export function bearer(token: string) {
  return { authorization: `Bearer ${token}` };
}

export function octet(token: string) {
  return { authorization: `Bearer ${token}`, "content-type": OCTET_STREAM };
}
