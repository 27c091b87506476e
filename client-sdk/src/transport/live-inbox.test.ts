// LiveInbox against a real WebSocket server on loopback that plays the relay's part frame by
// frame: delivery and acks, reconnect after a retryable close, stop on fatal codes and refusals.
// (The real relay, across two nodes on Redis, is in test/src/live-push-redis.test.ts.)
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { after, before, describe, it } from "node:test";
import {
  type InboxItem,
  initSodium,
  LIVE_CLOSE,
  LIVE_SUBPROTOCOL,
  LIVE_TOKEN_PROTOCOL_PREFIX,
} from "@testigo/protocol";
import { WebSocket, WebSocketServer } from "ws";
import { LiveInbox, LiveInboxDropped, LiveInboxRefused, liveInboxUrl } from "./live-inbox.js";

const CAMPAIGN = "AAAAAAAAAAAAAAAAAAAAAA";
const item = (n: number): InboxItem => ({
  kind: "envelope",
  cursor: `${n}-0`,
  messageId: `${String(n).padStart(2, "0")}AAAAAAAAAAAAAAAAAAAA`,
  envelope: "AAAA",
  receivedAt: 0,
});

type Script = (socket: WebSocket, request: IncomingMessage, connection: number) => void;

let server: WebSocketServer;
let port = 0;
let script: Script = () => undefined;
let connections = 0;
let refuseWith: number | undefined;

before(async () => {
  await initSodium();
  server = new WebSocketServer({
    port: 0,
    host: "127.0.0.1",
    handleProtocols: (protocols) => (protocols.has(LIVE_SUBPROTOCOL) ? LIVE_SUBPROTOCOL : false),
    verifyClient: (_info, done) => (refuseWith === undefined ? done(true) : done(false, refuseWith)),
  });
  server.on("connection", (socket, request) => {
    connections += 1;
    script(socket, request, connections);
  });
  await new Promise((resolve) => server.once("listening", resolve));
  const address = server.address();
  port = typeof address === "object" && address !== null ? address.port : 0;
});

after(() => {
  for (const client of server.clients) client.terminate();
  server.close();
});

function inbox(overrides: Partial<ConstructorParameters<typeof LiveInbox>[0]> = {}) {
  let tokens = 0;
  return new LiveInbox({
    relayUrl: `http://127.0.0.1:${port}`,
    campaignId: CAMPAIGN,
    token: async () => `${"t".repeat(42)}${tokens++ % 10}`,
    onItems: async () => undefined,
    WebSocket: WebSocket as unknown as ConstructorParameters<typeof LiveInbox>[0]["WebSocket"] & object,
    backoff: { initialMs: 10, maxMs: 20 },
    ...overrides,
  });
}

describe("LiveInbox", () => {
  it("builds ws:// and wss:// URLs and refuses plain ws to a public host", () => {
    assert.equal(
      liveInboxUrl("https://relay.example", CAMPAIGN),
      `wss://relay.example/v1/campaigns/${CAMPAIGN}/inbox/live`,
    );
    assert.equal(
      liveInboxUrl("http://127.0.0.1:8787", CAMPAIGN),
      `ws://127.0.0.1:8787/v1/campaigns/${CAMPAIGN}/inbox/live`,
    );
    assert.throws(() => liveInboxUrl("http://relay.example", CAMPAIGN), /refusing plain/);
  });

  it("sends the token as a subprotocol, hands batches over in order and acks what was processed", async () => {
    connections = 0;
    const acks: string[][] = [];
    let offered = "";
    script = (socket, request) => {
      offered = String(request.headers["sec-websocket-protocol"]);
      socket.send(JSON.stringify({ type: "items", items: [item(1), item(2)] }));
      socket.send(JSON.stringify({ type: "ready" }));
      socket.send(JSON.stringify({ type: "items", items: [item(3)] }));
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data)) as { type: string; cursors: string[] };
        acks.push(frame.cursors);
        socket.send(JSON.stringify({ type: "acked", count: frame.cursors.length }));
      });
    };
    const seen: string[] = [];
    let ready = 0;
    const live = inbox({
      onItems: async (items) => {
        seen.push(...items.map((i) => i.cursor));
        // Keep item 2 for later: only 1 and 3 are acked.
        return items.filter((i) => i.cursor !== "2-0").map((i) => i.cursor);
      },
      onReady: () => {
        ready += 1;
      },
    });
    const running = live.run();
    while (acks.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    live.stop();
    await running;
    assert.deepEqual(seen, ["1-0", "2-0", "3-0"]);
    assert.deepEqual(acks, [["1-0"], ["3-0"]]);
    assert.equal(ready, 1);
    assert.match(
      offered,
      new RegExp(`^${LIVE_SUBPROTOCOL}, ?${LIVE_TOKEN_PROTOCOL_PREFIX.replaceAll(".", "\\.")}t{42}\\d$`),
    );
  });

  it("stop() lets the batch in progress finish and sends its acks before closing", async () => {
    const acks: string[][] = [];
    script = (socket) => {
      socket.send(JSON.stringify({ type: "items", items: [item(4)] }));
      socket.send(JSON.stringify({ type: "items", items: [item(5)] }));
      socket.on("message", (data) => acks.push((JSON.parse(String(data)) as { cursors: string[] }).cursors));
    };
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const seen: string[] = [];
    let live: LiveInbox | undefined;
    live = inbox({
      onItems: async (items) => {
        seen.push(...items.map((i) => i.cursor));
        live?.stop(); // a signal arrives while the first batch is being written
        await held;
        return undefined;
      },
    });
    let resolved = false;
    const running = live.run().then(() => {
      resolved = true;
    });
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(resolved, false, "run() waits for the batch in progress");
    release();
    await running;
    while (acks.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(seen, ["4-0"], "the next batch is not started");
    assert.deepEqual(acks, [["4-0"]], "the finished batch is acked");
  });

  it("reconnects after 4008 slow-consumer and 4503 store-unavailable, with a fresh token each time", async () => {
    connections = 0;
    const tokens: string[] = [];
    script = (socket, request, n) => {
      tokens.push(String(request.headers["sec-websocket-protocol"]));
      if (n === 1) socket.close(LIVE_CLOSE.slowConsumer.code, LIVE_CLOSE.slowConsumer.reason);
      else if (n === 2) socket.close(LIVE_CLOSE.storeUnavailable.code, LIVE_CLOSE.storeUnavailable.reason);
      else socket.send(JSON.stringify({ type: "ready" }));
    };
    const drops: number[] = [];
    let live: LiveInbox | undefined;
    live = inbox({
      onDrop: (error) => drops.push(error instanceof LiveInboxDropped ? error.closeCode : 0),
      onReady: () => live?.stop(),
    });
    await live.run();
    assert.deepEqual(drops, [LIVE_CLOSE.slowConsumer.code, LIVE_CLOSE.storeUnavailable.code]);
    assert.equal(connections, 3);
    assert.equal(new Set(tokens).size, 3);
  });

  it("stops with a non-retryable error on 4403 forbidden and on a malformed frame", async () => {
    script = (socket) => socket.close(LIVE_CLOSE.forbidden.code, LIVE_CLOSE.forbidden.reason);
    const forbidden = await inbox()
      .run()
      .then(
        () => assert.fail("resolved"),
        (err: unknown) => err,
      );
    assert.ok(forbidden instanceof LiveInboxDropped);
    assert.equal(forbidden.closeCode, LIVE_CLOSE.forbidden.code);
    assert.equal(forbidden.shouldRetry(), false);

    script = (socket) => socket.send(JSON.stringify({ type: "surprise" }));
    await assert.rejects(inbox().run(), { code: "RELAY_PROTOCOL_ERROR" });
  });

  it("stops on a refused upgrade (401) instead of retrying forever", async () => {
    refuseWith = 401;
    try {
      const error = await inbox()
        .run()
        .then(
          () => assert.fail("resolved"),
          (err: unknown) => err,
        );
      assert.ok(error instanceof LiveInboxRefused);
      assert.equal(error.status, 401);
      assert.equal(error.shouldRetry(), false);
    } finally {
      refuseWith = undefined;
    }
  });

  it("stops when onItems fails, with that error", async () => {
    script = (socket) => socket.send(JSON.stringify({ type: "items", items: [item(9)] }));
    await assert.rejects(
      inbox({
        onItems: async () => {
          throw new Error("disk full");
        },
      }).run(),
      /disk full/,
    );
  });
});
