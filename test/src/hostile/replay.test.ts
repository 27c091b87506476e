// Replay: capture N accepted envelope submissions (HOSTILE_REPLAY_N; bounded by default for CI),
// replay every one of them, and again after the coordinators have fetched and acked them all.
// Every replay is answered exactly like the original (202 "accepted", same body), nothing new is
// stored (storeDigest unchanged, bar SQLite's AUTOINCREMENT counter, see storeDigest), and no
// coordinator device sees any message twice. On SQLite and on a real redis-server.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { API, apiPath } from "@testigo/protocol";
import { digestChanges } from "@testigo/server/testing";
import { FUZZ_DIGEST, RETRY_DIGEST } from "./fuzz-check.js";
import {
  bearer,
  type Campaign,
  enrollVolunteer,
  envCount,
  type HostileRelay,
  makeEnvelope,
  octet,
  onSqliteAndRedis,
  registerCampaign,
  type Volunteer,
} from "./harness.js";

const N = envCount("HOSTILE_REPLAY_N", 1_000);
const CONCURRENCY = 8;
const NO_RATE_LIMIT = { rateLimit: { capacity: 1_000_000_000, refillPerSecond: 1_000_000 } };

interface Captured {
  readonly token: string;
  readonly bytes: Buffer;
  readonly status: number;
  readonly body: string;
}

/** Runs `task` over `items` with at most CONCURRENCY at a time. */
async function pool<T, R>(items: readonly T[], task: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (;;) {
        const i = next++;
        const item = items[i];
        if (item === undefined) return;
        out[i] = await task(item);
      }
    }),
  );
  return out;
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Every message id in one device's inbox (paged), then acks them all. */
async function drainInbox(relay: HostileRelay, campaign: Campaign, device: number): Promise<string[]> {
  const token = campaign.devices[device]?.token ?? "";
  const ids: string[] = [];
  for (;;) {
    const res = await relay.app.inject({
      method: "GET",
      url: `${apiPath(API.readInbox, { campaignId: campaign.campaignId })}?limit=500`,
      headers: bearer(token),
    });
    assert.equal(res.statusCode, 200, res.body);
    const items = (res.json() as { items: { cursor: string; messageId?: string }[] }).items;
    if (items.length === 0) return ids;
    for (const item of items) if (item.messageId !== undefined) ids.push(item.messageId);
    const ack = await relay.app.inject({
      method: "POST",
      url: apiPath(API.ackInbox, { campaignId: campaign.campaignId }),
      headers: bearer(token),
      payload: { cursors: items.map((item) => item.cursor) },
    });
    assert.equal(ack.statusCode, 200, ack.body);
  }
}

function replaySuite(name: string, count: number, start: () => Promise<HostileRelay>): void {
  describe(name, { timeout: 120_000 + count * 40 }, () => {
    let relay: HostileRelay | undefined;
    after(async () => {
      await relay?.close();
    });

    it(`answers ${count} replayed submissions like the originals and stores nothing new`, async () => {
      relay = await start();
      const r = relay;
      const campaign = await registerCampaign(r, 2);
      const volunteers: Volunteer[] = [];
      for (let i = 0; i < 4; i++) volunteers.push(await enrollVolunteer(r, campaign));
      const submit = (token: string, bytes: Buffer) =>
        r.app.inject({
          method: "POST",
          url: apiPath(API.submitEnvelope, { campaignId: campaign.campaignId }),
          headers: octet(token),
          payload: bytes,
        });

      const started = Date.now();
      const originals = Array.from({ length: count }, (_, i) => ({
        token: volunteers[i % volunteers.length]?.token ?? "",
        bytes: Buffer.from(makeEnvelope(campaign.campaignId).bytes),
      }));
      const captured: Captured[] = await pool(originals, async ({ token, bytes }) => {
        const res = await submit(token, bytes);
        return { token, bytes, status: res.statusCode, body: res.body };
      });
      const captureMs = Date.now() - started;
      for (const c of captured) assert.equal(c.status, 202, c.body);

      const replay = async (when: string) => {
        const before = await r.digest(RETRY_DIGEST);
        const beforeAll = await r.digest(FUZZ_DIGEST);
        const t0 = Date.now();
        await pool(shuffled(captured), async (c) => {
          const res = await submit(c.token, c.bytes);
          assert.equal(res.statusCode, c.status, `${when}: ${res.body}`);
          assert.deepEqual(res.json(), JSON.parse(c.body), when);
        });
        const ms = Date.now() - t0;
        assert.deepEqual(digestChanges(before, await r.digest(RETRY_DIGEST)), [], `${when}: the store changed`);
        const counters = digestChanges(beforeAll, await r.digest(FUZZ_DIGEST));
        console.log(
          `${name}: replayed ${count} ${when} in ${ms} ms, all 202 as before; ` +
            `store unchanged${counters.length === 0 ? "" : ` except ${counters.join(", ")}`}`,
        );
      };

      await replay("before any fetch");

      // Each coordinator device gets every message exactly once.
      const sent = new Set(captured.map((c) => JSON.parse(c.body).messageId as string));
      for (const device of [0, 1]) {
        const ids = await drainInbox(r, campaign, device);
        assert.equal(ids.length, count, `device ${device}`);
        assert.deepEqual(new Set(ids), sent, `device ${device}`);
      }

      // After every device acked (the envelopes are deleted), replays are still duplicates.
      await replay("after every device fetched and acked");
      for (const device of [0, 1]) {
        assert.deepEqual(await drainInbox(r, campaign, device), [], `device ${device} got a replay delivered`);
      }
      console.log(`${name}: captured ${count} accepted submissions in ${captureMs} ms`);
    });
  });
}

onSqliteAndRedis(
  (store, start) =>
    replaySuite(`replayed submissions on ${store}`, store === "SQLite" ? N : Math.max(50, Math.round(N / 4)), start),
  NO_RATE_LIMIT,
);
