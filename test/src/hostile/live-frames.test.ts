// Fuzzes the live inbox (WebSocket) with hostile frames over a real loopback socket: binary and
// text garbage, oversized and fragmented-oversized messages, unknown frame kinds, pollution keys,
// and acks of unknown cursors. Each ends in the NAMED close its kind calls for (or, for a valid
// ack, an `acked` answer and an open socket); the relay never crashes and the store is unchanged.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  apiPath,
  LIVE_CLOSE,
  LIVE_INBOX_ROUTE,
  LIVE_SUBPROTOCOL,
  LIVE_TOKEN_PROTOCOL_PREFIX,
  type LiveCloseName,
  type LiveServerFrame,
  liveClientFrame,
  liveServerFrame,
  MAX_LIVE_CLIENT_FRAME_BYTES,
} from "@testigo/protocol";
import { digestChanges } from "@testigo/server/testing";
import fc from "fast-check";
import WebSocket from "ws";
import { FUZZ_DIGEST } from "./fuzz-check.js";
import { envCount, fuzzSeed, type HostileRelay, prototypeKeys, startHostileRelay } from "./harness.js";
import { hostileText } from "./route-arbitraries.js";
import { buildWorld, type World } from "./world.js";

const RUNS = envCount("HOSTILE_FUZZ_RUNS", 40);
const SEED = fuzzSeed("live-frames");
const WAIT_MS = 15_000;

interface HostileFrame {
  readonly label: string;
  /** Fragments of one message (one element: an ordinary frame); built late, so a failure prints short. */
  readonly parts: () => readonly (string | Buffer)[];
  readonly binary: boolean;
  /** The close it must get; undefined: an `acked` answer and the socket stays open. */
  readonly close: ExpectedClose | undefined;
}

interface ExpectedClose {
  readonly name: string;
  readonly code: number;
  readonly reasons: readonly string[];
}

function named(name: LiveCloseName): ExpectedClose {
  const entry = LIVE_CLOSE[name];
  // ws closes an oversized message itself (1009), before the relay sees it, without a reason.
  return {
    name: entry.reason,
    code: entry.code,
    reasons: name === "frameTooLarge" ? [entry.reason, ""] : [entry.reason],
  };
}

/**
 * RFC 6455's close for a text frame that is not UTF-8, sent by ws before the relay sees the frame.
 * LIVE_CLOSE does not name it (reported): a client cannot tell from LIVE_CLOSE whether to retry.
 */
const INVALID_UTF8: ExpectedClose = { name: "invalid-utf8 (RFC 6455 1007)", code: 1007, reasons: [""] };

function isValidFrame(text: string): boolean {
  try {
    return liveClientFrame.safeParse(JSON.parse(text)).success;
  } catch {
    return false;
  }
}

function textFrame(label: string, text: string): HostileFrame {
  const size = Buffer.byteLength(text);
  const close =
    size > MAX_LIVE_CLIENT_FRAME_BYTES
      ? named("frameTooLarge")
      : isValidFrame(text)
        ? undefined
        : named("malformedFrame");
  return { label: `${label} ${JSON.stringify(text.slice(0, 80))}`, parts: () => [text], binary: false, close };
}

const cursor = fc.stringMatching(/^[A-Za-z0-9_:.-]{1,60}$/).map((c) => `zz${c}`);

const hostileFrames: fc.Arbitrary<HostileFrame> = fc.oneof(
  fc.uint8Array({ maxLength: 2_000 }).map((bytes) => ({
    label: `a binary frame of ${bytes.length} bytes`,
    parts: () => [Buffer.from(bytes)],
    binary: true,
    close: named("unsupportedData"),
  })),
  hostileText.map((text) => textFrame("garbage text", text)),
  fc.jsonValue({ maxDepth: 3 }).map((value) => textFrame("a JSON value", JSON.stringify(value))),
  fc
    .tuple(fc.oneof(hostileText, fc.constantFrom("ack", "items", "ready", "acked", "error", "ping")), fc.jsonValue())
    .map(([type, rest]) => textFrame("an unknown or server-side frame kind", JSON.stringify({ type, rest }))),
  fc
    .constantFrom(
      `{"type":"ack","cursors":["zz1"],"__proto__":{"polluted":"yes"}}`,
      `{"__proto__":{"type":"ack"},"cursors":["zz1"]}`,
      `{"type":"ack","cursors":["zz1"],"constructor":{"prototype":{"polluted":"yes"}}}`,
      `{"type":"ack","cursors":[]}`,
      `{"type":"ack","cursors":"zz1"}`,
      `{"type":"ack","cursors":["a b"]}`,
      `{"type":"ack"}`,
    )
    .map((text) => textFrame("a malformed ack", text)),
  fc
    .array(cursor, { minLength: 501, maxLength: 600 })
    .map((cursors) => textFrame("an ack of too many cursors", JSON.stringify({ type: "ack", cursors }))),
  fc
    .array(cursor, { minLength: 1, maxLength: 50 })
    .map((cursors) => textFrame("an ack of unknown cursors", JSON.stringify({ type: "ack", cursors }))),
  fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0x7b, 0xf5, 0x7d]).map((bytes) => ({
    label: `a text frame of invalid UTF-8 ${JSON.stringify(bytes)}`,
    parts: () => [Buffer.from(bytes)],
    binary: false,
    close: INVALID_UTF8,
  })),
  fc.integer({ min: 1, max: 4_096 }).map((extra) => ({
    label: `a text frame ${extra} bytes over the limit`,
    parts: () => ["x".repeat(MAX_LIVE_CLIENT_FRAME_BYTES + extra)],
    binary: false,
    close: named("frameTooLarge"),
  })),
  fc.integer({ min: 1, max: 4_096 }).map((extra) => ({
    label: `a binary frame ${extra} bytes over the limit`,
    parts: () => [Buffer.alloc(MAX_LIVE_CLIENT_FRAME_BYTES + extra)],
    binary: true,
    close: named("frameTooLarge"),
  })),
  fc.integer({ min: 2, max: 8 }).map((pieces) => {
    const size = Math.ceil((MAX_LIVE_CLIENT_FRAME_BYTES + 1) / pieces);
    return {
      label: `an oversized message in ${pieces} fragments`,
      parts: () => Array.from({ length: pieces }, () => "y".repeat(size)),
      binary: false,
      close: named("frameTooLarge"),
    };
  }),
);

interface Connection {
  readonly socket: WebSocket;
  readonly frames: LiveServerFrame[];
  /** Resolves once a frame of this type arrives (or rejects on close). */
  waitFor(type: LiveServerFrame["type"]): Promise<LiveServerFrame>;
  readonly closed: Promise<{ code: number; reason: string }>;
}

function connect(url: string, options: WebSocket.ClientOptions, protocols?: string[]): Connection {
  const socket = new WebSocket(url, protocols ?? [], { ...options, handshakeTimeout: WAIT_MS });
  const frames: LiveServerFrame[] = [];
  const listeners = new Set<() => void>();
  socket.on("message", (data) => {
    frames.push(liveServerFrame.parse(JSON.parse(String(data))));
    for (const listener of listeners) listener();
  });
  socket.on("error", () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on("close", (code, reason) => {
      resolve({ code, reason: String(reason) });
      for (const listener of listeners) listener();
    });
  });
  return {
    socket,
    frames,
    closed,
    waitFor(type) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const frame = frames.find((f) => f.type === type);
          if (frame !== undefined) {
            listeners.delete(check);
            resolve(frame);
          } else if (socket.readyState === WebSocket.CLOSED) {
            listeners.delete(check);
            reject(new Error(`closed before a ${type} frame`));
          }
        };
        listeners.add(check);
        check();
      });
    },
  };
}

function send(socket: WebSocket, frame: HostileFrame): number {
  const parts = frame.parts();
  parts.forEach((part, i) => {
    socket.send(part, { binary: frame.binary, fin: i === parts.length - 1 });
  });
  return parts.reduce((n, p) => n + Buffer.byteLength(p), 0);
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("live inbox frames", { timeout: 60_000 + RUNS * 1_500 }, () => {
  let relay: HostileRelay | undefined;
  let world: World | undefined;
  let base = "";
  const closes = new Map<string, number>();
  before(async () => {
    relay = await startHostileRelay({ config: { rateLimit: { capacity: 1_000_000_000, refillPerSecond: 1_000_000 } } });
    world = await buildWorld(relay);
    const address = await relay.app.listen({ host: "127.0.0.1", port: 0 });
    base = address.replace(/^http/, "ws");
  });
  after(async () => {
    console.log(`live-frames: closes ${[...closes].map(([k, n]) => `${k}×${n}`).join(" ")}`);
    await relay?.close();
  });

  it("answers every hostile frame with its named close (or an ack of 0), and changes nothing", async () => {
    const w = world;
    assert.ok(w !== undefined && relay !== undefined);
    const url = `${base}${apiPath(LIVE_INBOX_ROUTE, { campaignId: w.a.campaignId })}`;
    const token = w.a.devices[0]?.token ?? "";
    const proto = prototypeKeys();
    await fc.assert(
      fc.asyncProperty(hostileFrames, async (frame) => {
        const before = await w.relay.digest(FUZZ_DIGEST);
        const conn = connect(url, { headers: { authorization: `Bearer ${token}` } });
        await within(conn.waitFor("ready"), "ready");
        const what = `${frame.label} (${send(conn.socket, frame)} bytes)`;
        if (frame.close === undefined) {
          const acked = await within(conn.waitFor("acked"), `acked after ${what}`);
          assert.deepEqual(acked, { type: "acked", count: 0 }, what);
          conn.socket.close(LIVE_CLOSE.normal.code);
          const { code } = await within(conn.closed, "close");
          closes.set("acked", (closes.get("acked") ?? 0) + 1);
          assert.equal(code, LIVE_CLOSE.normal.code, what);
        } else {
          const { code, reason } = await within(conn.closed, `close after ${what}`);
          const expected = frame.close;
          closes.set(expected.name, (closes.get(expected.name) ?? 0) + 1);
          assert.equal(code, expected.code, `${what}: closed ${code} ${reason}`);
          assert.ok(expected.reasons.includes(reason), `${what}: reason ${JSON.stringify(reason)}`);
          for (const f of conn.frames) {
            if (f.type === "error") assert.equal(f.code, "MALFORMED_REQUEST", what);
          }
        }
        assert.deepEqual(digestChanges(before, await w.relay.digest(FUZZ_DIGEST)), [], `the store changed: ${what}`);
        assert.equal(prototypeKeys(), proto, what);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    assert.equal((await relay.app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
  });

  it("refuses hostile upgrades before a socket exists, and still serves a good one", async () => {
    const w = world;
    assert.ok(w !== undefined);
    const url = `${base}${apiPath(LIVE_INBOX_ROUTE, { campaignId: w.a.campaignId })}`;
    const token = w.a.devices[0]?.token ?? "";
    const attempts: [string, WebSocket.ClientOptions, string[]][] = [
      ["no token", {}, [LIVE_SUBPROTOCOL]],
      ["a garbage subprotocol token", {}, [LIVE_SUBPROTOCOL, `${LIVE_TOKEN_PROTOCOL_PREFIX}garbage`]],
      ["a volunteer's token", { headers: { authorization: `Bearer ${w.volunteer.token}` } }, []],
      ["another campaign's token", { headers: { authorization: `Bearer ${w.b.devices[0]?.token ?? ""}` } }, []],
      ["a forged token", { headers: { authorization: `Bearer ${"A".repeat(token.length)}` } }, []],
    ];
    for (const [label, options, protocols] of attempts) {
      const status = await new Promise<number>((resolve) => {
        const socket = new WebSocket(url, protocols, { ...options, handshakeTimeout: WAIT_MS });
        socket.on("unexpected-response", (_req, res) => {
          resolve(res.statusCode ?? 0);
          res.resume();
          socket.terminate();
        });
        socket.on("open", () => {
          resolve(101);
          socket.close();
        });
        socket.on("error", () => resolve(-1));
      });
      assert.ok(status === 401 || status === 403, `${label}: ${status}`);
    }
    const good = connect(url, {}, [LIVE_SUBPROTOCOL, `${LIVE_TOKEN_PROTOCOL_PREFIX}${token}`]);
    await within(good.waitFor("ready"), "ready");
    assert.equal(good.socket.protocol, LIVE_SUBPROTOCOL);
    good.socket.close(LIVE_CLOSE.normal.code);
    await within(good.closed, "close");
  });
});
