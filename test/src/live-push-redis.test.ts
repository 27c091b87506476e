// Live push across two relay nodes on one Redis: a message submitted on node A is pushed live to
// a coordinator whose LiveInbox (client SDK) is connected to node B; acks made through B hold on
// A; and an item submitted while the coordinator is away arrives when it reconnects. Real
// redis-server (AOF, appendfsync always), real HTTP and WebSocket over loopback.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { LiveInbox, type WebSocketConstructor } from "@testigo/client-sdk";
import {
  API,
  apiPath,
  createRoster,
  encodeEnvelopeHeader,
  envelopeLength,
  generateDeviceKeys,
  generateSigningKeyPair,
  type InboxItem,
  inboxResponse,
  initSodium,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  OCTET_STREAM,
  pseudonymFromKeys,
  publicKeysOf,
  randomBytes,
  signAuthStatement,
  signEnrollment,
  toBase64url,
} from "@testigo/protocol";
import { appConfig, buildApp, createLogger, loadConfig, openStore, readEnv, type Store } from "@testigo/server";
import { type RedisProcess, startRedis } from "@testigo/server/testing";
import type { FastifyInstance } from "fastify";
import { WebSocket } from "ws";

const OPERATOR_TOKEN = "operator-token-for-the-two-node-live-test-0123";

interface Node {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly url: string;
}

let redis: RedisProcess;
const nodes: Node[] = [];

async function startNode(redisUrl: string): Promise<Node> {
  const { store } = await openStore(loadConfig({ ...readEnv({}), redis: redisUrl }));
  const app = buildApp(appConfig({ registrationToken: OPERATOR_TOKEN }), {
    store,
    logger: createLogger({ level: "silent" }),
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const node = { app, store, url: `http://127.0.0.1:${port}` };
  nodes.push(node);
  return node;
}

async function call(node: Node, method: string, path: string, body?: unknown, token?: string): Promise<unknown> {
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text === "" ? undefined : JSON.parse(text);
}

async function session(node: Node, campaignId: string, role: string, principal: string, key: Uint8Array) {
  const { challenge } = (await call(node, "POST", API.challenge.path)) as { challenge: string };
  const statement = { campaignId, role, principal, challenge } as const;
  const signature = signAuthStatement(statement as Parameters<typeof signAuthStatement>[0], key);
  return ((await call(node, "POST", API.session.path, { ...statement, signature })) as { token: string }).token;
}

async function submitEnvelope(node: Node, campaignId: string, token: string): Promise<string> {
  const messageId = toBase64url(randomBytes(16));
  const header = encodeEnvelopeHeader({ version: 1, campaignId, messageId, bucket: 0, recipientCount: 1 });
  const bytes = new Uint8Array(envelopeLength(0, 1) ?? 0);
  bytes.set(header, 0);
  bytes.set(randomBytes(bytes.length - header.length), header.length);
  const response = await fetch(`${node.url}${apiPath(API.submitEnvelope, { campaignId })}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": OCTET_STREAM },
    body: bytes,
  });
  assert.equal(response.status, 202, await response.text());
  return messageId;
}

before(async () => {
  await initSodium();
  redis = await startRedis({ appendonly: true, appendfsync: "always" });
});

after(async () => {
  for (const node of nodes) {
    await node.app.close();
    await node.store.close();
  }
  await redis.stop();
});

describe("live push across two relay nodes on one Redis", () => {
  it("pushes a message submitted on node A to a coordinator connected to node B, and resumes after a reconnect", async () => {
    const nodeA = await startNode(redis.url);
    const nodeB = await startNode(redis.url);

    // A campaign with one coordinator device, registered through node A.
    const root = generateSigningKeyPair();
    const device = { id: "laptop-1", keys: generateDeviceKeys() };
    const roster = createRoster({
      root,
      serial: 1,
      issuedAt: Date.now(),
      devices: [{ id: device.id, ...publicKeysOf(device.keys) }],
    });
    const { campaignId } = (await call(nodeA, "POST", API.registerCampaign.path, { roster }, OPERATOR_TOKEN)) as {
      campaignId: string;
    };
    const coordinatorA = await session(nodeA, campaignId, "coordinator", device.id, device.keys.signing.privateKey);

    // A volunteer enrolled through node A.
    const redeemToken = inviteRedeemToken(randomBytes(16));
    await call(
      nodeA,
      "POST",
      apiPath(API.addInvites, { campaignId }),
      { invites: [{ storedHash: inviteStoredHashBase64url(redeemToken), expiresAt: Date.now() + 3_600_000 }] },
      coordinatorA,
    );
    const keys = generateDeviceKeys();
    await call(nodeA, "POST", apiPath(API.enroll, { campaignId }), {
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
    const volunteer = await session(
      nodeA,
      campaignId,
      "volunteer",
      pseudonymFromKeys(publicKeysOf(keys)),
      keys.signing.privateKey,
    );

    // The coordinator's live inbox on node B (sessions live in Redis: one opened on B).
    const received: InboxItem[] = [];
    let waiters: (() => void)[] = [];
    const arrived = () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve);
      });
    const follow = () => {
      let readyResolve: () => void = () => undefined;
      const ready = new Promise<void>((resolve) => {
        readyResolve = resolve;
      });
      const live = new LiveInbox({
        relayUrl: nodeB.url,
        campaignId,
        token: () => session(nodeB, campaignId, "coordinator", device.id, device.keys.signing.privateKey),
        onItems: async (items) => {
          received.push(...items);
          const pending = waiters;
          waiters = [];
          for (const wake of pending) wake();
          return undefined; // ack all
        },
        onReady: () => readyResolve(),
        WebSocket: WebSocket as unknown as WebSocketConstructor,
      });
      const running = live.run();
      return { live, ready, running };
    };

    const first = follow();
    await first.ready;
    assert.equal(received.length, 0);

    const pushed = arrived();
    const messageId = await submitEnvelope(nodeA, campaignId, volunteer);
    await pushed;
    assert.deepEqual(
      received.map((item) => (item.kind === "envelope" ? item.messageId : item.kind)),
      [messageId],
    );

    // The ack went through node B; node A sees the inbox empty (once the ack has landed).
    let items = inboxResponse.parse(
      await call(nodeA, "GET", apiPath(API.readInbox, { campaignId }), undefined, coordinatorA),
    ).items;
    while (items.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      items = inboxResponse.parse(
        await call(nodeA, "GET", apiPath(API.readInbox, { campaignId }), undefined, coordinatorA),
      ).items;
    }

    // Away: a submission on A while disconnected arrives on the next connection to B.
    first.live.stop();
    await first.running;
    const missedId = await submitEnvelope(nodeA, campaignId, volunteer);
    const resumed = arrived();
    const second = follow();
    await resumed;
    await second.ready;
    second.live.stop();
    await second.running;
    assert.deepEqual(
      received.map((item) => (item.kind === "envelope" ? item.messageId : item.kind)),
      [messageId, missedId],
    );
  });
});
