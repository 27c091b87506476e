// Limits over real loopback HTTP: oversized bodies (with a Content-Length, and chunked ones that
// grow past the limit) get 413 PAYLOAD_TOO_LARGE and change nothing; headers too large get 431;
// and a flood from one credential gets exactly its quota, then 429 with Retry-After, while other
// credentials are unaffected (SQLite and Redis, one relay node).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  API,
  apiPath,
  BUCKET_SIZES,
  CONTROL_MESSAGE_BYTES,
  envelopeLength,
  MAX_RECIPIENTS,
  OCTET_STREAM,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  wireError,
} from "@testigo/protocol";
import { digestChanges } from "@testigo/server/testing";
import { FUZZ_DIGEST } from "./fuzz-check.js";
import {
  bearer,
  enrollVolunteer,
  type HostileRelay,
  makeEnvelope,
  OPERATOR_TOKEN,
  octet,
  onSqliteAndRedis,
  registerCampaign,
  startHostileRelay,
} from "./harness.js";
import { rawExchange, send } from "./http-client.js";
import { buildWorld, type World } from "./world.js";

const MAX_ENVELOPE = envelopeLength(BUCKET_SIZES.length - 1, MAX_RECIPIENTS) ?? 0;
const JSON_LIMIT = 256 * 1024;

function codeOf(body: string): string | undefined {
  try {
    const parsed = wireError.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.error.code : undefined;
  } catch {
    return undefined;
  }
}

describe("size limits over real HTTP", { timeout: 120_000 }, () => {
  let relay: HostileRelay | undefined;
  let world: World | undefined;
  let port = 0;
  before(async () => {
    relay = await startHostileRelay({ config: { rateLimit: { capacity: 1_000_000, refillPerSecond: 1_000 } } });
    world = await buildWorld(relay);
    await relay.app.listen({ host: "127.0.0.1", port: 0 });
    const address = relay.app.server.address();
    port = typeof address === "object" && address !== null ? address.port : 0;
  });
  after(async () => {
    await relay?.close();
  });

  function oversized(w: World) {
    const cid = w.a.campaignId;
    const coord = w.a.devices[0]?.token ?? "";
    const json = (token: string) => ({ ...bearer(token), "content-type": "application/json" });
    const bigJson = JSON.stringify({ invites: [{ storedHash: "A".repeat(JSON_LIMIT), expiresAt: 1 }] });
    return [
      {
        what: "invites (JSON)",
        path: apiPath(API.addInvites, { campaignId: cid }),
        headers: json(coord),
        body: bigJson,
      },
      {
        what: "campaign registration (JSON)",
        path: API.registerCampaign.path,
        headers: json(OPERATOR_TOKEN),
        body: bigJson,
      },
      {
        what: "an envelope",
        path: apiPath(API.submitEnvelope, { campaignId: cid }),
        headers: octet(w.volunteer.token),
        body: Buffer.alloc(MAX_ENVELOPE + 1),
      },
      {
        what: "a photo chunk",
        path: apiPath(API.putChunk, { campaignId: cid, photoId: w.photoId, index: 1 }),
        headers: octet(w.volunteer.token),
        body: Buffer.alloc(PHOTO_CHUNK_CIPHERTEXT_BYTES + 1),
      },
      {
        what: "a control message",
        path: apiPath(API.putMailbox, { campaignId: cid, pseudonym: w.volunteer.pseudonym }),
        headers: octet(coord),
        body: Buffer.alloc(CONTROL_MESSAGE_BYTES + 1),
      },
    ];
  }

  it("answers 413 PAYLOAD_TOO_LARGE to a body over each route's limit, with or without a Content-Length", async () => {
    const w = world;
    assert.ok(w !== undefined && relay !== undefined);
    const before = await relay.digest(FUZZ_DIGEST);
    for (const c of oversized(w)) {
      const method = c.what === "a photo chunk" ? "PUT" : "POST";
      const length = Buffer.byteLength(c.body);
      const withLength = await send(port, {
        method,
        path: c.path,
        headers: { ...c.headers, "content-length": String(length) },
        chunks: [c.body],
      });
      assert.equal(withLength.status, 413, `${c.what} with a Content-Length: ${withLength.body}`);
      assert.equal(codeOf(withLength.body), "PAYLOAD_TOO_LARGE", c.what);
      // Chunked: the relay cannot know the size up front and must count while it reads.
      const pieces: Buffer[] = [];
      const bytes = Buffer.from(c.body);
      for (let i = 0; i < bytes.length; i += 16 * 1024) pieces.push(bytes.subarray(i, i + 16 * 1024));
      const chunked = await send(port, { method, path: c.path, headers: c.headers, chunks: pieces });
      assert.equal(chunked.status, 413, `${c.what}, chunked: ${chunked.body}`);
      assert.equal(codeOf(chunked.body), "PAYLOAD_TOO_LARGE", c.what);
    }
    assert.deepEqual(digestChanges(before, await relay.digest(FUZZ_DIGEST)), []);
  });

  it("refuses an unauthenticated oversized upload with 401 before reading it", async () => {
    const w = world;
    assert.ok(w !== undefined);
    const res = await send(port, {
      method: "POST",
      path: apiPath(API.submitEnvelope, { campaignId: w.a.campaignId }),
      headers: { "content-type": OCTET_STREAM, "content-length": String(50 * 1024 * 1024) },
      chunks: [Buffer.alloc(64 * 1024)],
    });
    assert.equal(res.status, 401);
    assert.equal(codeOf(res.body), "AUTH_REQUIRED");
  });

  it("answers 431 to headers too large, and keeps answering", async () => {
    const oneHuge = `GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Junk: ${"a".repeat(20_000)}\r\n\r\n`;
    const many = `GET /healthz HTTP/1.1\r\nHost: relay\r\n${Array.from({ length: 400 }, (_, i) => `X-H${i}: ${"b".repeat(60)}\r\n`).join("")}\r\n`;
    const hugeToken = `GET /v1/campaigns/x/inbox HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer ${"c".repeat(40_000)}\r\n\r\n`;
    for (const [what, bytes] of [
      ["one 20 KB header", oneHuge],
      ["400 headers", many],
      ["a 40 KB bearer token", hugeToken],
    ] as const) {
      const answer = await rawExchange(port, bytes);
      assert.match(answer, /^HTTP\/1\.1 431 /, `${what}: ${answer.slice(0, 80)}`);
    }
    const health = await send(port, { method: "GET", path: "/healthz" });
    assert.equal(health.status, 200);
  });
  it("answers 400 to malformed HTTP framing (smuggling, bad chunks, bad headers), storing nothing", async () => {
    assert.ok(relay !== undefined);
    const post = "POST /v1/auth/challenge HTTP/1.1\r\nHost: relay\r\n";
    const framings: readonly (readonly [string, string])[] = [
      [
        "Content-Length with Transfer-Encoding",
        `${post}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      ],
      ["two Content-Lengths", `${post}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`],
      [
        "a bad chunk size",
        `${post}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      ],
      ["Transfer-Encoding: identity", `${post}Transfer-Encoding: identity\r\n\r\n`],
      ["a NUL in a header", "GET /healthz HTTP/1.1\r\nHost: relay\r\nX-A: a\u0000b\r\n\r\n"],
      ["a space before a header's colon", "GET /healthz HTTP/1.1\r\nHost: relay\r\nX-A : b\r\n\r\n"],
      ["an obsolete folded header", "GET /healthz HTTP/1.1\r\nHost: relay\r\nX-A: b\r\n c\r\n\r\n"],
      ["bare line feeds", "GET /healthz HTTP/1.1\nHost: relay\n\n"],
      ["a garbage request line", "GARBAGE\r\n\r\n"],
      ["an unknown HTTP version", "GET /healthz HTTP/9.9\r\nHost: relay\r\n\r\n"],
    ];
    const before = await relay.digest(FUZZ_DIGEST);
    const shapes = new Set<string>();
    for (const [what, bytes] of framings) {
      const answer = await rawExchange(port, bytes, true);
      assert.match(answer, /^HTTP\/1\.1 400 /, `${what}: ${JSON.stringify(answer.slice(0, 80))}`);
      const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
      shapes.add(codeOf(body) === undefined ? "not a wire error" : "a wire error");
    }
    console.log(`malformed framing: every answer 400, body ${[...shapes].join(" / ")}`);
    assert.deepEqual(digestChanges(before, await relay.digest(FUZZ_DIGEST)), []);
    assert.equal((await send(port, { method: "GET", path: "/healthz" })).status, 200);
  });
});

function floodSuite(name: string, start: () => Promise<HostileRelay>): void {
  describe(name, { timeout: 120_000 }, () => {
    const CAPACITY = 20;
    let relay: HostileRelay | undefined;
    after(async () => {
      await relay?.close();
    });

    it("gives a flooding credential exactly its quota, then 429 with Retry-After; others are unaffected", async () => {
      relay = await start();
      const r = relay;
      const campaign = await registerCampaign(r, 1);
      const [flooder, parallel, bystander] = [
        await enrollVolunteer(r, campaign),
        await enrollVolunteer(r, campaign),
        await enrollVolunteer(r, campaign),
      ];
      const submit = (token: string) =>
        r.app.inject({
          method: "POST",
          url: apiPath(API.submitEnvelope, { campaignId: campaign.campaignId }),
          headers: octet(token),
          payload: Buffer.from(makeEnvelope(campaign.campaignId).bytes),
        });

      // One after another: count the 2xx before the first 429 (the clock is frozen: no refill).
      const statuses: number[] = [];
      for (let i = 0; i < CAPACITY + 10; i++) {
        const res = await submit(flooder.token);
        statuses.push(res.statusCode);
        if (res.statusCode === 429) {
          assert.equal(codeOf(res.body), "RATE_LIMITED");
          assert.ok(Number(res.headers["retry-after"]) >= 1, "429 without Retry-After");
        }
      }
      const firstRefusal = statuses.indexOf(429);
      assert.equal(firstRefusal, CAPACITY, `statuses: ${statuses.join(",")}`);
      assert.ok(statuses.slice(0, CAPACITY).every((s) => s === 202));
      assert.ok(statuses.slice(CAPACITY).every((s) => s === 429));

      // Another credential is not affected by the flood.
      assert.equal((await submit(bystander.token)).statusCode, 202);

      // All at once: the bucket is atomic, exactly CAPACITY get through.
      const burst = await Promise.all(Array.from({ length: CAPACITY + 10 }, () => submit(parallel.token)));
      const counts = burst.reduce<Record<number, number>>((acc, res) => {
        acc[res.statusCode] = (acc[res.statusCode] ?? 0) + 1;
        return acc;
      }, {});
      assert.deepEqual(counts, { 202: CAPACITY, 429: 10 });

      // One second later, one token (refill 1/s): one more, then refused again.
      r.now += 1_000;
      assert.equal((await submit(flooder.token)).statusCode, 202);
      assert.equal((await submit(flooder.token)).statusCode, 429);

      // Nothing refused was stored, nothing accepted was lost.
      const coord = campaign.devices[0]?.token ?? "";
      const inbox = await r.app.inject({
        method: "GET",
        url: `${apiPath(API.readInbox, { campaignId: campaign.campaignId })}?limit=500`,
        headers: bearer(coord),
      });
      assert.equal(inbox.statusCode, 200);
      assert.equal((inbox.json() as { items: unknown[] }).items.length, CAPACITY * 2 + 2);
      console.log(`${name}: ${statuses.filter((s) => s === 202).length} of ${statuses.length} accepted in order`);
    });
  });
}

const LIMITED = { rateLimit: { capacity: 20, refillPerSecond: 1 } };
onSqliteAndRedis((store, start) => floodSuite(`a flood on ${store}`, start), LIMITED);
