// TLS served directly (--tls-cert/--tls-key): HTTPS and WSS with a self-signed certificate made
// here with openssl, and a client that trusts exactly that certificate.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { initSodium, LIVE_SUBPROTOCOL } from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { WebSocket } from "ws";
import { buildApp } from "./app.js";
import { appConfig } from "./config/config.js";
import { frameQueue, livePath, submit, takeItems } from "./live/live-test-helpers.js";
import { createLogger } from "./logger.js";
import { readTlsFiles } from "./run-relay.js";
import { SqliteStore } from "./store/sqlite-store.js";
import {
  coordinatorToken,
  enrollVolunteer,
  makeCampaign,
  OPERATOR_TOKEN,
  type Relay,
  registerCampaign,
} from "./test-fixture.js";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));
let dir: string;
let certFile: string;
let keyFile: string;
let ca: Buffer;

before(async () => {
  await initSodium();
  dir = mkdtempSync(join(tmpdir(), "testigo-tls-"));
  certFile = join(dir, "cert.pem");
  keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "1"],
      ...["-keyout", keyFile, "-out", certFile, "-subj", "/CN=localhost"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    ],
    { stdio: "ignore" },
  );
  ca = readFileSync(certFile);
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function httpsGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      let body = "";
      res.on("data", (chunk) => {
        body += String(chunk);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("TESTIGO_")) env[key] = value;
  return env;
}

describe("TLS", () => {
  it("serves HTTPS and pushes the live inbox over WSS to a client trusting the certificate", async () => {
    const data = mkdtempSync(join(dir, "data-"));
    const store = await SqliteStore.open({ dataDir: data });
    const logs: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        logs.push(String(chunk));
        done();
      },
    });
    const relay: Relay = {
      app: buildApp(appConfig({ registrationToken: OPERATOR_TOKEN }), {
        store,
        logger: createLogger({ stream }),
        clock: () => relay.now,
        tls: readTlsFiles({ certFile, keyFile }),
      }),
      store,
      logs,
      dir: data,
      now: Date.now(),
      async close() {
        await relay.app.close();
        await store.close();
      },
    };
    try {
      const campaign = await registerCampaign(relay, makeCampaign(1));
      const coordinator = await coordinatorToken(relay, campaign, 0);
      const volunteer = await enrollVolunteer(relay, campaign, coordinator);
      const app: FastifyInstance = relay.app;
      await app.listen({ host: "127.0.0.1", port: 0 });
      const address = app.server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;

      assert.deepEqual(await httpsGet(`https://localhost:${port}/healthz`), { status: 200, body: '{"status":"ok"}' });

      const id = await submit(relay, campaign.campaignId, volunteer.token);
      const socket = new WebSocket(`wss://localhost:${port}${livePath(campaign.campaignId)}`, [LIVE_SUBPROTOCOL], {
        ca,
        headers: { authorization: `Bearer ${coordinator}` },
      });
      const queue = frameQueue(socket);
      assert.deepEqual((await takeItems(queue, 1)).messageIds, [id]);
      socket.close(1000);
      await queue.closed;

      // A client that does not trust the certificate is refused by TLS itself.
      const untrusting = new WebSocket(`wss://localhost:${port}${livePath(campaign.campaignId)}`);
      const failure = await new Promise<Error>((resolve) => untrusting.once("error", resolve));
      assert.match(failure.message, /self[- ]signed/i);
    } finally {
      await relay.close();
    }
  });

  it("main.js --tls-cert/--tls-key: says https://, answers /readyz over TLS, stops on SIGTERM", async () => {
    const data = join(dir, "main-data");
    const child = spawn(
      process.execPath,
      [MAIN, "--port", "0", "--data", data, "--tls-cert", certFile, "--tls-key", keyFile],
      { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += String(chunk);
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const port = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const match = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
        if (match?.[1] !== undefined) {
          clearInterval(timer);
          resolve(match[1]);
        } else if (child.exitCode !== null) {
          clearInterval(timer);
          reject(new Error(`relay exited: ${stdout}`));
        }
      }, 20);
    });
    assert.equal((await httpsGet(`https://localhost:${port}/readyz`)).status, 200);
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  });

  it("refuses to start, naming the flag, when a TLS file is missing or not PEM", () => {
    const notPem = join(dir, "not-pem.txt");
    writeFileSync(notPem, "hello");
    for (const [args, pattern] of [
      [
        ["--tls-cert", join(dir, "missing.pem"), "--tls-key", keyFile],
        /cannot read the TLS certificate .* \(--tls-cert\): ENOENT/,
      ],
      [["--tls-cert", certFile, "--tls-key", notPem], /TLS key .* \(--tls-key\) is not PEM/],
    ] as const) {
      let stderr = "";
      try {
        execFileSync(process.execPath, [MAIN, "--port", "0", "--data", join(dir, "refused"), ...args], {
          env: cleanEnv(),
          stdio: ["ignore", "pipe", "pipe"],
        });
        assert.fail("the relay started");
      } catch (err) {
        const failure = err as { status?: number; stderr?: Buffer };
        assert.equal(failure.status, 1);
        stderr = String(failure.stderr);
      }
      assert.match(stderr, pattern);
    }
  });
});
