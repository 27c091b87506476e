// Requests that never become requests: bad HTTP framing, oversized headers and slow clients get
// the documented error body over a real socket, and a slowloris client is closed promptly.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { initSodium, wireError } from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.js";
import { appConfig } from "./config/config.js";
import { createLogger } from "./logger.js";
import { SqliteStore } from "./store/sqlite-store.js";
import { OPERATOR_TOKEN } from "./test-fixture.js";

const HEADERS_TIMEOUT_MS = 2_000;
/** Node's own connection-checking interval: the bound slow clients used to live to. */
const OLD_BOUND_MS = 30_000;

let dir: string;
let store: SqliteStore;
let app: FastifyInstance;
let port: number;

before(async () => {
  await initSodium();
  dir = mkdtempSync(join(tmpdir(), "testigo-framing-"));
  store = await SqliteStore.open({ dataDir: dir });
  const stream = new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
  app = buildApp(appConfig({ registrationToken: OPERATOR_TOKEN }), {
    store,
    logger: createLogger({ level: "info", stream }),
    timeouts: { connectionMs: 3_000, requestMs: 3_000, keepAliveMs: 5_000, headersMs: HEADERS_TIMEOUT_MS },
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  assert.ok(typeof address === "object" && address !== null);
  port = address.port;
});

after(async () => {
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Exchange {
  readonly text: string;
  /** Milliseconds from connecting to the relay closing the connection. */
  readonly closedAfterMs: number;
}

/** Connects, lets `talk` write, and collects everything until the relay closes the socket. */
function exchange(talk: (socket: Socket) => void): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect({ host: "127.0.0.1", port });
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (data: string) => {
      text += data;
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      // The relay may reset after answering; what it answered is what counts.
      if (err.code !== "ECONNRESET" && err.code !== "EPIPE") reject(err);
    });
    socket.on("close", () => resolve({ text, closedAfterMs: performance.now() - started }));
    socket.on("connect", () => talk(socket));
  });
}

function parse(text: string): { status: number; code: string; message: string } {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  assert.ok(match, `not an HTTP response: ${JSON.stringify(text.slice(0, 80))}`);
  const body = wireError.parse(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)));
  assert.match(text, /content-type: application\/json/i);
  return { status: Number(match[1]), code: body.error.code, message: body.error.message };
}

describe("requests the HTTP parser refuses", () => {
  it("answers malformed framing with 400 MALFORMED_REQUEST and closes", async () => {
    const { text } = await exchange((socket) => socket.write("THIS IS NOT HTTP\r\n\r\n"));
    const answer = parse(text);
    assert.equal(answer.status, 400);
    assert.equal(answer.code, "MALFORMED_REQUEST");
  });

  it("answers a bad Content-Length with 400 MALFORMED_REQUEST", async () => {
    const { text } = await exchange((socket) =>
      socket.write("POST /v1/auth/challenge HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
    );
    assert.equal(parse(text).code, "MALFORMED_REQUEST");
  });

  it("answers oversized headers with 431 HEADERS_TOO_LARGE and closes", async () => {
    const { text } = await exchange((socket) =>
      socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`),
    );
    const answer = parse(text);
    assert.equal(answer.status, 431);
    assert.equal(answer.code, "HEADERS_TOO_LARGE");
  });

  it("closes a slowloris client soon after headersTimeout, with 408 REQUEST_TIMEOUT", async () => {
    let timer: ReturnType<typeof setInterval> | undefined;
    const result = await exchange((socket) => {
      socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
      // One header byte every 300 ms: never idle, never done.
      let n = 0;
      timer = setInterval(() => {
        if (!socket.destroyed) socket.write(n++ % 2 === 0 ? "X" : "y");
      }, 300);
    });
    clearInterval(timer);
    // Before the fix the connection lived until Node's 30 s connection check; the margin is wide.
    assert.ok(
      result.closedAfterMs < OLD_BOUND_MS - 10_000,
      `closed after ${Math.round(result.closedAfterMs)} ms, expected well under ${OLD_BOUND_MS} ms`,
    );
    const answer = parse(result.text);
    assert.equal(answer.status, 408);
    assert.equal(answer.code, "REQUEST_TIMEOUT");
  });

  it("still serves well-formed requests on the same server", async () => {
    const { text } = await exchange((socket) =>
      socket.write("GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert.equal(parse(text).code, "NOT_FOUND");
  });
});
