// Finding H5: a seized relay (SQLite database + WAL, Redis append-only file) must hold no record
// that links a stored envelope to the pseudonym that sent it. Volunteers typically open a session
// and submit at once, so ANY write naming the pseudonym (or its session) at that moment would
// line up with the envelope written next. These tests enroll several volunteers, then have each
// open a session and submit immediately, and scan the raw files the store wrote in that phase.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { API, apiPath, initSodium } from "@testigo/protocol";
import Database from "better-sqlite3";
import { buildApp } from "./app.js";
import { appConfig } from "./config/config.js";
import { createLogger } from "./logger.js";
import { RedisStore } from "./store/redis-store.js";
import { SqliteStore } from "./store/sqlite-store.js";
import type { Store } from "./store/store.js";
import {
  coordinatorToken,
  enrollVolunteer,
  makeEnvelope,
  OPERATOR_TOKEN,
  octet,
  type Relay,
  registerCampaign,
  sessionToken,
  type Volunteer,
} from "./test-fixture.js";
import { type RedisProcess, startRedis } from "./testing/redis-server.js";

const VOLUNTEERS = 6;
const SUBMISSIONS = 3;
const MINUTE = 60_000;

const dirs: string[] = [];
before(async () => {
  await initSodium();
});
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A relay on any store, driven with inject() (the fixture's helpers only use app and now). */
function relayOn(store: Store): Relay {
  const app = buildApp(appConfig({ registrationToken: OPERATOR_TOKEN }), {
    store,
    logger: createLogger({ level: "silent" }),
  });
  return { app, store, logs: [], dir: "", now: Date.now(), close: async () => app.close() } as unknown as Relay;
}

interface Phase {
  readonly volunteers: readonly Volunteer[];
  /** Session tokens opened in the submission phase. */
  readonly tokens: readonly string[];
}

/** Enrollment (which legitimately stores pseudonyms), then `mark()`, then auth+submit per volunteer. */
async function authThenSubmit(relay: Relay, mark: () => void): Promise<Phase> {
  const campaign = await registerCampaign(relay);
  const coordinator = await coordinatorToken(relay, campaign);
  const volunteers: Volunteer[] = [];
  for (let i = 0; i < VOLUNTEERS; i++) volunteers.push(await enrollVolunteer(relay, campaign, coordinator));
  mark();
  const tokens: string[] = [];
  for (const volunteer of volunteers) {
    const token = await sessionToken(
      relay,
      campaign.campaignId,
      "volunteer",
      volunteer.pseudonym,
      volunteer.keys.signing.privateKey,
    );
    tokens.push(token);
    for (let i = 0; i < SUBMISSIONS; i++) {
      const envelope = makeEnvelope(campaign.campaignId);
      const res = await relay.app.inject({
        method: API.submitEnvelope.method,
        url: apiPath(API.submitEnvelope, { campaignId: campaign.campaignId }),
        headers: octet(token),
        payload: Buffer.from(envelope.bytes),
      });
      assert.equal(res.statusCode, 202, res.body);
    }
  }
  await relay.app.close(); // includes the shutdown merge of rate-limit levels
  return { volunteers, tokens };
}

/** Every identifying string that must not appear in what was written during the phase. */
function forbidden(phase: Phase): string[] {
  return [
    ...phase.volunteers.flatMap((v) => [v.pseudonym, v.token]),
    ...phase.tokens,
    ...phase.tokens.map((token) => Buffer.from(token, "base64url").toString("latin1")),
    "session",
  ];
}

describe("a seized relay holds no link from a stored envelope to its sender (H5)", { timeout: 120_000 }, () => {
  it("SQLite: the WAL written during auth+submit names no pseudonym, session or token", async () => {
    const dir = await mkdtemp(join(tmpdir(), "testigo-seized-"));
    dirs.push(dir);
    const store = await SqliteStore.open({ dataDir: dir });
    const wal = join(dir, "relay.sqlite-wal");
    let mark = 0;
    const phase = await authThenSubmit(relayOn(store), () => {
      mark = statSync(wal).size;
    });
    const written = readFileSync(wal).subarray(mark).toString("latin1");
    await store.close();
    assert.ok(written.length > SUBMISSIONS * VOLUNTEERS * 1000, "the phase wrote its envelopes to the WAL");
    for (const text of forbidden(phase)) assert.equal(written.includes(text), false, `WAL holds ${text}`);

    const db = new Database(join(dir, "relay.sqlite"), { readonly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
      assert.equal(tables.includes("sessions"), false, "no session table");
      const buckets = db.prepare("SELECT bucket, at FROM rate_buckets").all() as { bucket: string; at: number }[];
      for (const { bucket, at } of buckets) {
        assert.match(bucket, /^[A-Za-z0-9_-]{22}$/, "bucket names are keyed hashes");
        assert.equal(at % 10_000, 0, "bucket levels are referred to whole 10 s");
      }
      const times = db.prepare("SELECT received_at FROM inbox UNION ALL SELECT received_at FROM messages").pluck();
      for (const time of times.all() as number[]) assert.equal(time % MINUTE, 0, "receive times are whole minutes");
      const challenges = db.prepare("SELECT expires_at FROM challenges").pluck().all() as number[];
      for (const time of challenges) assert.equal(time % 10_000, 0, "challenge expiries are whole 10 s");
    } finally {
      db.close();
    }
  });

  it("Redis (appendonly, appendfsync always): the AOF written during auth+submit names no pseudonym or session", async () => {
    let redis: RedisProcess | undefined = await startRedis({ appendonly: true, appendfsync: "always" });
    const store = await RedisStore.connect(redis.url);
    try {
      const aofDir = join(redis.dir, "appendonlydir");
      const aof = () =>
        readdirSync(aofDir)
          .filter((name) => name.endsWith(".aof"))
          .sort()
          .map((name) => readFileSync(join(aofDir, name)).toString("latin1"))
          .join("");
      let mark = 0;
      const phase = await authThenSubmit(relayOn(store), () => {
        mark = aof().length;
      });
      const all = aof();
      const written = all.slice(mark);
      assert.ok(written.includes("XADD"), "the phase wrote its envelopes to the AOF");
      for (const text of forbidden(phase)) assert.equal(written.includes(text), false, `AOF holds ${text}`);
      assert.equal(/\{s:/.test(all), false, "no session key anywhere");
      // Stream ids (XADD <ms>-<seq>) carry whole minutes; absolute expiries whole 10 s.
      const ids = [...written.matchAll(/\r\nXADD\r\n\$\d+\r\n[^\r]+\r\n\$\d+\r\n(\d+)-\d+\r\n/g)].map((m) =>
        Number(m[1]),
      );
      assert.ok(ids.length >= VOLUNTEERS * SUBMISSIONS, `found ${ids.length} XADDs`);
      for (const ms of ids) assert.equal(ms % MINUTE, 0, `stream id ms ${ms} is not a whole minute`);
      const expiries = [...all.matchAll(/\r\nPXAT\r\n\$\d+\r\n(\d+)\r\n/g)].map((m) => Number(m[1]));
      for (const ms of expiries) assert.equal(ms % 10_000, 0, `expiry ${ms} is not a whole 10 s`);
    } finally {
      await store.close();
      await redis.stop();
      redis = undefined;
    }
  });
});
