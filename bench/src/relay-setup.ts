// Servers and fixtures for the relay benchmark: the relay on either store, the bare fastify
// baseline, a discarding TCP sink, and a campaign with enrolled volunteers (real keys, real
// sessions, set up through the relay's own routes with inject()).
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  API,
  apiPath,
  BUCKET_SIZES,
  campaignId as campaignIdSchema,
  createRoster,
  envelopeLength,
  generateDeviceKeys,
  generateSigningKeyPair,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  MAX_RECIPIENTS,
  pseudonymFromKeys,
  publicKeysOf,
  randomBytes,
  readEnvelopeHeader,
  signAuthStatement,
  signEnrollment,
  toBase64url,
} from "@testigo/protocol";
import { appConfig, buildApp, createLogger, loadConfig, openStore, readEnv, type Store } from "@testigo/server";
import Fastify, { type FastifyInstance } from "fastify";
import { z } from "zod";

export const OPERATOR_TOKEN = "bench-operator-token-0123456789-abcdefghijkl";

export interface Listening {
  readonly url: string;
  close(): Promise<void>;
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return `http://127.0.0.1:${port}`;
}

export interface BenchRelay extends Listening {
  readonly app: FastifyInstance;
  readonly store: Store;
}

/** The relay with a rate limit high enough not to be what is measured. */
export async function startBenchRelay(store: { kind: "sqlite" } | { kind: "redis"; url: string }): Promise<BenchRelay> {
  const raw =
    store.kind === "sqlite"
      ? { ...readEnv({}), data: mkdtempSync(join(tmpdir(), "testigo-bench-")) }
      : { ...readEnv({}), redis: store.url };
  const opened = await openStore(loadConfig(raw));
  const app = buildApp(
    appConfig({ registrationToken: OPERATOR_TOKEN, rateLimit: { capacity: 1_000_000, refillPerSecond: 1_000_000 } }),
    { store: opened.store, logger: createLogger({ level: "silent" }) },
  );
  const url = await listen(app);
  return {
    app,
    store: opened.store,
    url,
    async close() {
      await app.close();
      await opened.store.close();
    },
  };
}

/** The bare stack: fastify, an octet-stream body, zod validation of the path, the same answer. */
export async function startBareRoute(): Promise<Listening> {
  const app = Fastify({ logger: false, bodyLimit: envelopeLength(BUCKET_SIZES.length - 1, MAX_RECIPIENTS) ?? 0 });
  app.addContentTypeParser("application/octet-stream", { parseAs: "buffer" }, (_request, body, done) => {
    done(null, body);
  });
  const params = z.object({ campaignId: campaignIdSchema }).strict();
  app.post("/bare/:campaignId/envelopes", async (request, reply) => {
    const { campaignId } = params.parse(request.params);
    const header = readEnvelopeHeader(request.body as Uint8Array);
    if (header.campaignId !== campaignId) return reply.code(400).send({ error: "campaign" });
    return reply.code(202).send({ status: "accepted", messageId: header.messageId });
  });
  const url = await listen(app);
  return { url, close: () => app.close() };
}

/** A TCP server that reads and discards everything, and closes when the client ends. */
export async function startTcpSink(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((socket) => {
    socket.on("data", () => undefined);
    socket.on("end", () => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export interface BenchCampaign {
  readonly campaignId: string;
  readonly volunteerTokens: readonly string[];
}

async function inject(
  app: FastifyInstance,
  method: "GET" | "POST" | "PUT",
  url: string,
  payload?: unknown,
  token?: string,
) {
  const res = await app.inject({
    method,
    url,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
  });
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return res.body === "" ? undefined : (JSON.parse(res.body) as Record<string, unknown>);
}

async function session(
  app: FastifyInstance,
  campaignId: string,
  role: "coordinator" | "volunteer",
  principal: string,
  key: Uint8Array,
) {
  const { challenge } = (await inject(app, "POST", API.challenge.path)) as { challenge: string };
  const statement = { campaignId, role, principal, challenge };
  const body = await inject(app, "POST", API.session.path, {
    ...statement,
    signature: signAuthStatement(statement, key),
  });
  return (body as { token: string }).token;
}

/** A campaign with one coordinator device and `volunteers` enrolled volunteers with sessions. */
export async function benchCampaign(app: FastifyInstance, volunteers: number): Promise<BenchCampaign> {
  const root = generateSigningKeyPair();
  const device = { id: "laptop-1", keys: generateDeviceKeys() };
  const roster = createRoster({
    root,
    serial: 1,
    issuedAt: Date.now(),
    devices: [{ id: device.id, ...publicKeysOf(device.keys) }],
  });
  const { campaignId } = (await inject(app, "POST", API.registerCampaign.path, { roster }, OPERATOR_TOKEN)) as {
    campaignId: string;
  };
  const coordinator = await session(app, campaignId, "coordinator", device.id, device.keys.signing.privateKey);
  const tokens: string[] = [];
  for (let i = 0; i < volunteers; i++) {
    const redeemToken = inviteRedeemToken(randomBytes(16));
    await inject(
      app,
      "POST",
      apiPath(API.addInvites, { campaignId }),
      { invites: [{ storedHash: inviteStoredHashBase64url(redeemToken), expiresAt: Date.now() + 86_400_000 }] },
      coordinator,
    );
    const keys = generateDeviceKeys();
    await inject(app, "POST", apiPath(API.enroll, { campaignId }), {
      redeemToken: toBase64url(redeemToken),
      signingKey: toBase64url(keys.signing.publicKey),
      encryptionKey: toBase64url(keys.encryption.publicKey),
      signature: signEnrollment(
        redeemToken,
        keys.signing.publicKey,
        keys.encryption.publicKey,
        keys.signing.privateKey,
      ),
    });
    tokens.push(
      await session(app, campaignId, "volunteer", pseudonymFromKeys(publicKeysOf(keys)), keys.signing.privateKey),
    );
  }
  return { campaignId, volunteerTokens: tokens };
}

/** Declares `count` photos of `chunks` chunks each; returns their ids with the token that owns them. */
export async function declarePhotos(app: FastifyInstance, campaign: BenchCampaign, count: number, chunks: number) {
  const photos: { photoId: string; token: string }[] = [];
  for (let i = 0; i < count; i++) {
    const photoId = toBase64url(randomBytes(16));
    const token = campaign.volunteerTokens[i % campaign.volunteerTokens.length] ?? "";
    await inject(
      app,
      "PUT",
      apiPath(API.createPhoto, { campaignId: campaign.campaignId, photoId }),
      { chunkCount: chunks },
      token,
    );
    photos.push({ photoId, token });
  }
  return photos;
}

/**
 * The disk's durable-write ceiling, like `dd bs=<block> oflag=dsync`: writes `totalBytes` in
 * `blockBytes` blocks to a fresh file in the temporary folder (where the relay's SQLite file
 * lives), each followed by fdatasync. MB/s; no relay can durably take chunks faster than this
 * with one sync per block.
 */
export function durableWriteMBps(blockBytes: number, totalBytes: number): number {
  const dir = mkdtempSync(join(tmpdir(), "testigo-bench-disk-"));
  const fd = openSync(join(dir, "probe"), "w");
  const block = Buffer.alloc(blockBytes, 7);
  const start = performance.now();
  let written = 0;
  try {
    while (written < totalBytes) {
      written += writeSync(fd, block);
      fdatasyncSync(fd);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return written / ((performance.now() - start) / 1000) / 1e6;
}
