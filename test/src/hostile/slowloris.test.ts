// Slow connections against a relay listening on loopback with short timeouts: 1,000 connections
// (HOSTILE_SLOWLORIS_CONNECTIONS) that trickle header lines and never finish them, and slow POST
// bodies that trickle bytes of a large declared Content-Length. The relay must close every one of
// them within a bounded time while legitimate clients keep succeeding. Their latencies are printed
// against a baseline taken before the attack, never asserted (tests do not fail on timing).
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { API, apiPath, BUCKET_SIZES, envelopeLength, MAX_RECIPIENTS, OCTET_STREAM } from "@testigo/protocol";
import { envCount, type HostileRelay, makeEnvelope, octet, startHostileRelay } from "./harness.js";
import { openSocket, percentile, send } from "./http-client.js";
import { buildWorld, type World } from "./world.js";

const CONNECTIONS = envCount("HOSTILE_SLOWLORIS_CONNECTIONS", 1_000);
/** One in this many attackers is a slow POST body, the rest trickle headers. */
const SLOW_BODY_EVERY = 5;
const TIMEOUTS = { connectionMs: 2_000, requestMs: 3_000, keepAliveMs: 1_000 };
const HEADERS_TIMEOUT_MS = 2_000;
/** Faster than the idle timeout, so only the headers and request timeouts can end them. */
const TRICKLE_MS = 500;
/**
 * Node checks headersTimeout and requestTimeout every connectionsCheckingInterval (30 s by default;
 * the relay does not change it), so a slow connection lives up to requestMs + 30 s. Bound, with slack.
 */
const CLOSE_BOUND_MS = TIMEOUTS.requestMs + 30_000 + 25_000;
const MAX_ENVELOPE = envelopeLength(BUCKET_SIZES.length - 1, MAX_RECIPIENTS) ?? 0;

interface Attacker {
  readonly socket: Socket;
  readonly kind: "headers" | "body";
  readonly openedAt: number;
  closedAt?: number;
  answer: string;
  lines: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("slow connections", { timeout: 180_000 }, () => {
  let relay: HostileRelay | undefined;
  let world: World | undefined;
  let port = 0;
  const attackers: Attacker[] = [];
  before(async () => {
    relay = await startHostileRelay({
      config: { rateLimit: { capacity: 1_000_000, refillPerSecond: 1_000 } },
      timeouts: TIMEOUTS,
    });
    world = await buildWorld(relay);
    await relay.app.listen({ host: "127.0.0.1", port: 0 });
    // As run-relay.ts does: headers must arrive quickly.
    relay.app.server.headersTimeout = HEADERS_TIMEOUT_MS;
    const address = relay.app.server.address();
    port = typeof address === "object" && address !== null ? address.port : 0;
  });
  after(async () => {
    for (const a of attackers) a.socket.destroy();
    await relay?.close();
  });

  /** One legitimate round: a health check, a roster read and an envelope submission; latencies in ms. */
  async function legitimate(w: World, rounds: number): Promise<number[]> {
    const latencies: number[] = [];
    const cid = w.a.campaignId;
    for (let i = 0; i < rounds; i++) {
      for (const [what, request] of [
        ["health", () => send(port, { method: "GET", path: "/healthz" })],
        ["roster", () => send(port, { method: "GET", path: apiPath(API.getRoster, { campaignId: cid }) })],
        [
          "envelope",
          () =>
            send(port, {
              method: "POST",
              path: apiPath(API.submitEnvelope, { campaignId: cid }),
              headers: octet(w.volunteer.token),
              chunks: [Buffer.from(makeEnvelope(cid).bytes)],
            }),
        ],
      ] as const) {
        const started = performance.now();
        const res = await request();
        latencies.push(performance.now() - started);
        assert.ok(res.status === 200 || res.status === 202, `legitimate ${what}: ${res.status} ${res.body}`);
      }
    }
    return latencies;
  }

  it("closes every slowloris and slow-body connection within a bounded time, and serves others meanwhile", async () => {
    const w = world;
    assert.ok(w !== undefined);
    const baseline = await legitimate(w, 10);

    const startedAt = Date.now();
    // Trickling starts at once, so the first connections never sit idle while the rest open.
    const trickle = setInterval(() => {
      for (const a of attackers) {
        if (a.closedAt !== undefined || a.socket.destroyed) continue;
        a.lines += 1;
        a.socket.write(a.kind === "headers" ? `X-Slow-${a.lines}: ${"z".repeat(8)}\r\n` : Buffer.alloc(16, 1));
      }
    }, TRICKLE_MS);
    trickle.unref();
    for (let i = 0; i < CONNECTIONS; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, CONNECTIONS - i) }, async (_, j) => {
          const socket = await openSocket(port);
          const kind: Attacker["kind"] = (i + j) % SLOW_BODY_EVERY === 0 ? "body" : "headers";
          const attacker: Attacker = { socket, kind, openedAt: Date.now(), answer: "", lines: 0 };
          socket.on("data", (part: Buffer) => {
            attacker.answer += part.toString("latin1").slice(0, 200);
          });
          socket.on("error", () => {});
          socket.on("close", () => {
            attacker.closedAt = Date.now();
          });
          if (kind === "headers") {
            socket.write(`GET /healthz HTTP/1.1\r\nHost: relay\r\n`);
          } else {
            socket.write(
              `POST ${apiPath(API.submitEnvelope, { campaignId: w.a.campaignId })} HTTP/1.1\r\nHost: relay\r\n` +
                `Authorization: Bearer ${w.volunteer.token}\r\nContent-Type: ${OCTET_STREAM}\r\n` +
                `Content-Length: ${MAX_ENVELOPE}\r\n\r\n`,
            );
          }
          return attacker;
        }),
      );
      attackers.push(...batch);
    }

    let underAttack: number[] = [];
    try {
      // Legitimate clients while every attacker is still connected.
      underAttack = await legitimate(w, 10);
      const openDuringLegit = attackers.filter((a) => a.closedAt === undefined).length;
      // Then wait until the relay has closed them all (or the bound passes).
      while (attackers.some((a) => a.closedAt === undefined) && Date.now() - startedAt < CLOSE_BOUND_MS) {
        await sleep(250);
      }
      const open = attackers.filter((a) => a.closedAt === undefined);
      const lived = attackers.filter((a) => a.closedAt !== undefined).map((a) => (a.closedAt ?? 0) - a.openedAt);
      const answered = attackers.filter((a) => /^HTTP\/1\.1 408/.test(a.answer)).length;
      console.log(
        `slowloris: ${attackers.length} slow connections (${attackers.filter((a) => a.kind === "body").length} slow bodies), ` +
          `${openDuringLegit} still open while legitimate clients ran; closed by the relay after ` +
          `p50 ${percentile(lived, 50).toFixed(0)} ms, p99 ${percentile(lived, 99).toFixed(0)} ms, ` +
          `max ${Math.max(...lived).toFixed(0)} ms (${answered} with a 408); legitimate latency ` +
          `baseline p50 ${percentile(baseline, 50).toFixed(1)} ms p99 ${percentile(baseline, 99).toFixed(1)} ms, ` +
          `under attack p50 ${percentile(underAttack, 50).toFixed(1)} ms p99 ${percentile(underAttack, 99).toFixed(1)} ms`,
      );
      assert.equal(open.length, 0, `${open.length} slow connections still open after ${CLOSE_BOUND_MS} ms`);
    } finally {
      clearInterval(trickle);
    }
    // And the relay still serves.
    assert.equal((await send(port, { method: "GET", path: "/healthz" })).status, 200);
  });
});
