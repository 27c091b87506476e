// The live inbox over WebSocket, on a real SqliteStore: backlog then live items, acks, resume
// after reconnect, auth before the upgrade, bad frames, slow consumers, store outage, shutdown.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  API,
  apiPath,
  inboxResponse,
  initSodium,
  LIVE_CLOSE,
  LIVE_SUBPROTOCOL,
  LIVE_TOKEN_PROTOCOL_PREFIX,
  MAX_LIVE_CLIENT_FRAME_BYTES,
} from "@testigo/protocol";
import { WebSocket } from "ws";
import {
  bearer,
  type Campaign,
  coordinatorToken,
  enrollVolunteer,
  makeCampaign,
  type Relay,
  registerCampaign,
  startRelay,
  type Volunteer,
} from "../test-fixture.js";
import { type FrameQueue, frameQueue, livePath, submit, takeItems } from "./live-test-helpers.js";

interface Setup {
  relay: Relay;
  campaign: Campaign;
  coord1: string;
  coord2: string;
  volunteer: Volunteer;
}

async function setup(overrides?: Parameters<typeof startRelay>[0]): Promise<Setup> {
  const relay = await startRelay(overrides);
  const campaign = await registerCampaign(relay, makeCampaign(2));
  const coord1 = await coordinatorToken(relay, campaign, 0);
  const coord2 = await coordinatorToken(relay, campaign, 1);
  const volunteer = await enrollVolunteer(relay, campaign, coord1);
  return { relay, campaign, coord1, coord2, volunteer };
}

async function connect(s: Setup, token: string) {
  let queue: FrameQueue | undefined;
  // The relay may send its first frames together with the upgrade answer: listen from the start.
  const socket = await s.relay.app.injectWS(
    livePath(s.campaign.campaignId),
    { headers: bearer(token) },
    {
      onInit: (ws) => {
        queue = frameQueue(ws);
      },
    },
  );
  if (queue === undefined) throw new Error("onInit was not called");
  return { socket, queue };
}

async function inboxOf(s: Setup, token: string): Promise<string[]> {
  const res = await s.relay.app.inject({
    method: "GET",
    url: apiPath(API.readInbox, { campaignId: s.campaign.campaignId }),
    headers: bearer(token),
  });
  return inboxResponse.parse(res.json()).items.map((item) => item.cursor);
}

before(async () => {
  await initSodium();
});

describe("live inbox", () => {
  let s: Setup;
  before(async () => {
    s = await setup();
  });
  after(async () => {
    await s.relay.close();
  });

  it("sends the unacked backlog, then ready, then new items as they are submitted", async () => {
    const early = [
      await submit(s.relay, s.campaign.campaignId, s.volunteer.token),
      await submit(s.relay, s.campaign.campaignId, s.volunteer.token),
    ];
    const { socket, queue } = await connect(s, s.coord1);
    const backlog = await takeItems(queue, 2);
    assert.deepEqual(backlog.messageIds, early);
    assert.deepEqual(await queue.next(), { type: "ready" });

    const late = await submit(s.relay, s.campaign.campaignId, s.volunteer.token);
    const pushed = await takeItems(queue, 1);
    assert.deepEqual(pushed.messageIds, [late]);

    socket.send(JSON.stringify({ type: "ack", cursors: [...backlog.cursors, ...pushed.cursors] }));
    assert.deepEqual(await queue.next(), { type: "acked", count: 3 });
    // Acked for this device only: the other coordinator device still has all three.
    assert.deepEqual(await inboxOf(s, s.coord1), []);
    assert.equal((await inboxOf(s, s.coord2)).length, 3);
    socket.close(1000);
    await queue.closed;
  });

  it("sends everything unacked again after a reconnect", async () => {
    const first = await connect(s, s.coord2);
    const seen = await takeItems(first.queue, 3);
    first.socket.terminate();
    await first.queue.closed;

    const second = await connect(s, s.coord2);
    const again = await takeItems(second.queue, 3);
    assert.deepEqual(again.cursors, seen.cursors);
    second.socket.send(JSON.stringify({ type: "ack", cursors: again.cursors }));
    assert.deepEqual(await second.queue.next(), { type: "ready" });
    assert.deepEqual(await second.queue.next(), { type: "acked", count: 3 });
    second.socket.close(1000);
    await second.queue.closed;
  });

  it("authenticates before the upgrade: no token 401, a volunteer 403, another campaign 403", async () => {
    await assert.rejects(s.relay.app.injectWS(livePath(s.campaign.campaignId)), /Unexpected server response: 401/);
    await assert.rejects(
      s.relay.app.injectWS(livePath(s.campaign.campaignId), { headers: bearer(s.volunteer.token) }),
      /Unexpected server response: 403/,
    );
    const other = await registerCampaign(s.relay, makeCampaign(1));
    await assert.rejects(
      s.relay.app.injectWS(livePath(other.campaignId), { headers: bearer(s.coord1) }),
      /Unexpected server response: 403/,
    );
  });

  it("refuses WebSocket upgrades on every other route", async () => {
    await assert.rejects(
      s.relay.app.injectWS(apiPath(API.readInbox, { campaignId: s.campaign.campaignId }), {
        headers: bearer(s.coord1),
      }),
      /Unexpected server response: 404/,
    );
  });

  it("closes 1008 on a malformed frame, with an error frame first", async () => {
    for (const bad of ["not json", JSON.stringify({ type: "ack", cursors: [] }), JSON.stringify({ type: "hello" })]) {
      const { socket, queue } = await connect(s, s.coord1);
      assert.deepEqual(await queue.next(), { type: "ready" });
      socket.send(bad);
      const frame = await queue.next();
      assert.equal(frame.type, "error");
      assert.equal(frame.type === "error" ? frame.code : "", "MALFORMED_REQUEST");
      assert.deepEqual(await queue.closed, {
        code: LIVE_CLOSE.malformedFrame.code,
        reason: LIVE_CLOSE.malformedFrame.reason,
      });
    }
  });

  it("closes 1003 on a binary frame and 1009 on an oversized one", async () => {
    const binary = await connect(s, s.coord1);
    assert.deepEqual(await binary.queue.next(), { type: "ready" });
    binary.socket.send(new Uint8Array([1, 2, 3]));
    assert.equal((await binary.queue.closed).code, LIVE_CLOSE.unsupportedData.code);

    const big = await connect(s, s.coord1);
    assert.deepEqual(await big.queue.next(), { type: "ready" });
    big.socket.send("x".repeat(MAX_LIVE_CLIENT_FRAME_BYTES + 1));
    assert.equal((await big.queue.closed).code, LIVE_CLOSE.frameTooLarge.code);
  });

  it("counts connections and pushed items in /metrics without ids", async () => {
    const res = await s.relay.app.inject({ method: "GET", url: API.metrics.path });
    assert.match(res.body, /testigo_live_connections_opened_total \d+/);
    assert.match(res.body, /testigo_live_items_pushed_total \d+/);
    assert.match(res.body, /testigo_live_dropped_malformed_frame_total \d+/);
    assert.equal(res.body.includes(s.campaign.campaignId), false);
    const logs = s.relay.logs.join("");
    for (const secret of [s.coord1, s.coord2, s.volunteer.token, s.volunteer.pseudonym]) {
      assert.equal(logs.includes(secret), false);
    }
  });
});

describe("live inbox limits", () => {
  it("pushes at most windowItems unacked items, and more once they are acked", async () => {
    const s = await setup({ live: { windowItems: 2 } });
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push(await submit(s.relay, s.campaign.campaignId, s.volunteer.token));
      const { socket, queue } = await connect(s, s.coord1);
      const firstTwo = await takeItems(queue, 2);
      assert.deepEqual(firstTwo.messageIds, ids.slice(0, 2));
      assert.deepEqual(await queue.next(), { type: "ready" });
      socket.send(JSON.stringify({ type: "ack", cursors: firstTwo.cursors }));
      assert.deepEqual(await queue.next(), { type: "acked", count: 2 });
      const third = await takeItems(queue, 1);
      assert.deepEqual(third.messageIds, ids.slice(2));
      socket.close(1000);
      await queue.closed;
    } finally {
      await s.relay.close();
    }
  });

  it("drops a consumer that does not read with 4008 slow-consumer, and loses nothing", async () => {
    const s = await setup({
      live: { maxBufferedBytes: 64 * 1024, drainTimeoutMs: 300 },
      rateLimit: { capacity: 10_000, refillPerSecond: 1_000 },
    });
    try {
      const { socket, queue } = await connect(s, s.coord1);
      assert.deepEqual(await queue.next(), { type: "ready" });
      socket.pause(); // stops reading: the relay's send buffer fills
      const ids = [];
      for (let i = 0; i < 200; i++) ids.push(await submit(s.relay, s.campaign.campaignId, s.volunteer.token));
      socket.resume();
      const closed = await queue.closed;
      assert.deepEqual(closed, { code: LIVE_CLOSE.slowConsumer.code, reason: LIVE_CLOSE.slowConsumer.reason });
      const res = await s.relay.app.inject({ method: "GET", url: API.metrics.path });
      assert.match(res.body, /testigo_live_dropped_slow_consumer_total 1/);
      // Everything is still in the store, unacked, for the next connection.
      const again = await connect(s, s.coord1);
      assert.deepEqual((await takeItems(again.queue, 200)).messageIds, ids);
      again.socket.close(1000);
      await again.queue.closed;
    } finally {
      await s.relay.close();
    }
  });

  it("closes 4503 store-unavailable when the store fails (fails closed)", async () => {
    const s = await setup();
    try {
      const { socket, queue } = await connect(s, s.coord1);
      assert.deepEqual(await queue.next(), { type: "ready" });
      await s.relay.store.close();
      socket.send(JSON.stringify({ type: "ack", cursors: ["1-0"] }));
      const frame = await queue.next();
      assert.equal(frame.type === "error" ? frame.code : frame.type, "STORE_UNAVAILABLE");
      assert.deepEqual(await queue.closed, {
        code: LIVE_CLOSE.storeUnavailable.code,
        reason: LIVE_CLOSE.storeUnavailable.reason,
      });
      // And no new socket opens while the store is down: the upgrade itself gets 503.
      await assert.rejects(connect(s, s.coord1), /Unexpected server response: 503/);
    } finally {
      await s.relay.close();
    }
  });

  it("closes every socket with 1001 going-away on shutdown", async () => {
    const s = await setup();
    const { queue } = await connect(s, s.coord1);
    assert.deepEqual(await queue.next(), { type: "ready" });
    await s.relay.close();
    assert.deepEqual(await queue.closed, { code: LIVE_CLOSE.goingAway.code, reason: LIVE_CLOSE.goingAway.reason });
  });
});

describe("live inbox over a real socket", () => {
  it("accepts the token as a subprotocol (browsers) and answers with the live protocol only", async () => {
    const s = await setup();
    try {
      await s.relay.app.listen({ host: "127.0.0.1", port: 0 });
      const address = s.relay.app.server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      const url = `ws://127.0.0.1:${port}${livePath(s.campaign.campaignId)}`;
      const id = await submit(s.relay, s.campaign.campaignId, s.volunteer.token);
      const socket = new WebSocket(url, [LIVE_SUBPROTOCOL, `${LIVE_TOKEN_PROTOCOL_PREFIX}${s.coord1}`]);
      const queue = frameQueue(socket);
      await new Promise((resolve, reject) => {
        socket.once("open", resolve);
        socket.once("error", reject);
      });
      assert.equal(socket.protocol, LIVE_SUBPROTOCOL);
      assert.deepEqual((await takeItems(queue, 1)).messageIds, [id]);
      socket.close(1000);
      await queue.closed;

      const refused = new WebSocket(url, [LIVE_SUBPROTOCOL, `${LIVE_TOKEN_PROTOCOL_PREFIX}${"A".repeat(43)}`]);
      const status = await new Promise<number>((resolve) => {
        refused.on("error", () => undefined);
        refused.once("unexpected-response", (req, res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
      });
      assert.equal(status, 401);
    } finally {
      await s.relay.close();
    }
  });
});
