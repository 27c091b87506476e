import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runStoreConformance } from "./conformance.js";
import { SqliteStore, WriteFaultInjector } from "./sqlite-store.js";
import type { CampaignRecord } from "./store.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "testigo-sqlite-"));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

runStoreConformance("SqliteStore", async () => {
  const dir = await tempDir();
  const store = await SqliteStore.open({ dataDir: join(dir, "data") });
  return { store, cleanup: () => store.close() };
});

const record: CampaignRecord = {
  campaignId: "camp",
  rootPublicKey: "root",
  roster: new Uint8Array([1, 2, 3]),
  rosterSerial: 1,
  deviceIds: ["dev-a"],
  deviceSigningKeys: { "dev-a": "key" },
  createdAt: 1,
};

describe("SqliteStore durability", { timeout: 30_000 }, () => {
  it("creates the data folder 0700 and the database 0600", async () => {
    const dataDir = join(await tempDir(), "data");
    const store = await SqliteStore.open({ dataDir });
    await store.close();
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dataDir, "relay.sqlite"))).mode & 0o777, 0o600);
  });

  it("keeps data across close and reopen", async () => {
    const dataDir = join(await tempDir(), "data");
    const first = await SqliteStore.open({ dataDir });
    await first.createCampaign(record);
    await first.submitEnvelope("camp", "m1", new Uint8Array([9, 9, 9]), 5);
    await first.close();
    const second = await SqliteStore.open({ dataDir });
    const items = await second.readInbox("camp", "dev-a", 10);
    assert.equal(items.length, 1);
    assert.deepEqual(items[0]?.kind === "envelope" && items[0].envelope, new Uint8Array([9, 9, 9]));
    await second.close();
  });

  it("keeps an acknowledged envelope when the writing process is killed with SIGKILL", async () => {
    const dataDir = join(await tempDir(), "data");
    const moduleUrl = new URL("./sqlite-store.js", import.meta.url).href;
    const script = join(dataDir, "..", "writer.mjs");
    await writeFile(
      script,
      `import { SqliteStore } from ${JSON.stringify(moduleUrl)};
       const store = await SqliteStore.open({ dataDir: process.argv[2] });
       await store.createCampaign({ ...${JSON.stringify({ ...record, roster: [] })}, roster: new Uint8Array([1, 2, 3]) });
       const result = await store.submitEnvelope("camp", "m-killed", new Uint8Array([4, 5, 6]), 7);
       process.stdout.write(result.status === "accepted" ? "acked\\n" : "not-acked\\n");
       setInterval(() => {}, 1000);`,
    );
    const child = spawn(process.execPath, [script, dataDir], { stdio: ["ignore", "pipe", "inherit"] });
    const output = await new Promise<string>((resolve, reject) => {
      let text = "";
      child.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes("\n")) resolve(text.trim());
      });
      child.once("exit", () => reject(new Error(`writer exited early: ${text}`)));
    });
    assert.equal(output, "acked");
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const store = await SqliteStore.open({ dataDir });
    const items = await store.readInbox("camp", "dev-a", 10);
    assert.equal(items.length, 1);
    const item = items[0];
    assert.ok(item?.kind === "envelope");
    assert.equal(item.messageId, "m-killed");
    assert.deepEqual(item.envelope, new Uint8Array([4, 5, 6]));
    await store.close();
  });

  it("syncs SQLite's own WAL when the database file is a symlink to another folder (no WAL of its own beside the link)", async () => {
    const root = await tempDir();
    const dataDir = join(root, "data");
    const elsewhere = join(root, "big-disk");
    await mkdir(dataDir, { recursive: true });
    await mkdir(elsewhere);
    await symlink(join(elsewhere, "relay.db"), join(dataDir, "relay.sqlite"));
    const store = await SqliteStore.open({ dataDir });
    await store.createCampaign(record);
    assert.deepEqual(await store.submitEnvelope("camp", "m1", new Uint8Array([7]), 1), { status: "accepted" });
    // SQLite writes its WAL beside the link's target; a WAL file beside the link would be one
    // the store syncs and SQLite never writes.
    assert.equal(existsSync(join(elsewhere, "relay.db-wal")), true);
    assert.equal(existsSync(join(dataDir, "relay.sqlite-wal")), false);
    await store.close();
    const reopened = await SqliteStore.open({ dataDir });
    assert.equal((await reopened.readInbox("camp", "dev-a", 10)).length, 1);
    await reopened.close();
  });

  it("after an injected write failure rejects, reports unhealthy, and recovers on reopen", async () => {
    const dataDir = join(await tempDir(), "data");
    const faults = new WriteFaultInjector();
    const store = await SqliteStore.open({ dataDir, faults });
    await store.createCampaign(record);
    faults.failNextWrite();
    await assert.rejects(store.submitEnvelope("camp", "m1", new Uint8Array([1]), 1), { code: "store-unavailable" });
    await assert.rejects(store.ping(), { code: "store-unavailable" });
    await assert.rejects(store.readInbox("camp", "dev-a", 10), { code: "store-unavailable" });
    await assert.rejects(store.submitEnvelope("camp", "m2", new Uint8Array([2]), 1), { code: "store-unavailable" });
    await store.close();
    const reopened = await SqliteStore.open({ dataDir });
    await reopened.ping();
    // The failed write left nothing behind; the retry is accepted as new.
    assert.deepEqual(await reopened.readInbox("camp", "dev-a", 10), []);
    assert.deepEqual(await reopened.submitEnvelope("camp", "m1", new Uint8Array([1]), 1), { status: "accepted" });
    await reopened.close();
  });

  it("a failed WAL sync acknowledges nothing: the batch's writes and later reads reject, health turns red", async () => {
    const dataDir = join(await tempDir(), "data");
    const faults = new WriteFaultInjector();
    const store = await SqliteStore.open({ dataDir, faults });
    await store.createCampaign(record);
    faults.failNextSync();
    // The transactions committed, but their sync failed: none of them may be answered.
    const failed = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => store.submitEnvelope("camp", `s${i}`, new Uint8Array([i]), 1)),
    );
    assert.deepEqual(
      failed.map((s) => s.status === "rejected" && (s.reason as { code?: unknown }).code),
      Array.from({ length: 5 }, () => "store-unavailable"),
    );
    await assert.rejects(store.ping(), { code: "store-unavailable" });
    await assert.rejects(store.readInbox("camp", "dev-a", 10), { code: "store-unavailable" });
    await assert.rejects(store.submitEnvelope("camp", "s9", new Uint8Array([9]), 1), { code: "store-unavailable" });
    await store.close();
    const reopened = await SqliteStore.open({ dataDir });
    await reopened.ping();
    await reopened.close();
  });

  it("a read waits for the WAL sync of the commits it sees", async () => {
    const dataDir = join(await tempDir(), "data");
    const faults = new WriteFaultInjector();
    const store = await SqliteStore.open({ dataDir, faults });
    await store.createCampaign(record);
    faults.failNextSync();
    const write = store.submitEnvelope("camp", "r1", new Uint8Array([1]), 1);
    // Issued after the write committed (the batch runs on the next turn), before its sync ends:
    // it sees the envelope, so it must not answer unless the envelope is on disk; here it never is.
    const read = new Promise((resolve) => setImmediate(resolve)).then(() => store.readInbox("camp", "dev-a", 10));
    await assert.rejects(write, { code: "store-unavailable" });
    await assert.rejects(read, { code: "store-unavailable" });
    await store.close();
  });

  it("group commit: writes arriving together commit together; one op's error fails only that op", async () => {
    const dataDir = join(await tempDir(), "data");
    const faults = new WriteFaultInjector();
    const store = await SqliteStore.open({ dataDir, faults });
    await store.createCampaign(record);
    const settled = await Promise.allSettled([
      ...Array.from({ length: 20 }, (_, i) => store.submitEnvelope("camp", `m${i}`, new Uint8Array([i]), 1)),
      store.submitEnvelope("no-such-campaign", "x", new Uint8Array([1]), 1),
      store.submitEnvelope("camp", "m0", new Uint8Array([99]), 1), // same id, other bytes: conflict
    ]);
    assert.deepEqual(
      settled.slice(0, 20).map((s) => s.status === "fulfilled" && s.value.status),
      Array.from({ length: 20 }, () => "accepted"),
    );
    assert.equal(settled[20]?.status, "rejected");
    assert.equal(
      settled[20]?.status === "rejected" && (settled[20].reason as { code?: unknown }).code,
      "unknown-campaign",
    );
    assert.deepEqual(settled[21]?.status === "fulfilled" && settled[21].value, { status: "conflict" });
    assert.equal((await store.readInbox("camp", "dev-a", 100)).length, 20);
    // One failed commit fails every write of its batch: none of them is acknowledged, none stored.
    faults.failNextWrite();
    const failed = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => store.submitEnvelope("camp", `f${i}`, new Uint8Array([i]), 1)),
    );
    assert.deepEqual(
      failed.map((s) => s.status === "rejected" && (s.reason as { code?: unknown }).code),
      Array.from({ length: 5 }, () => "store-unavailable"),
    );
    await store.close();
    const reopened = await SqliteStore.open({ dataDir });
    const ids = (await reopened.readInbox("camp", "dev-a", 100)).map(
      (item) => item.kind === "envelope" && item.messageId,
    );
    assert.deepEqual(
      ids,
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
    await reopened.close();
  });

  it("checkpoints off the commit path and bounds the WAL under sustained concurrent writes", async () => {
    const dataDir = join(await tempDir(), "data");
    // A 64-frame bound (256 KiB); 4 MiB of chunks below (17 frames each), 8 writers at a time.
    const store = await SqliteStore.open({ dataDir, walLimitFrames: 64 });
    await store.createCampaign(record);
    const chunk = (photo: number, index: number) => new Uint8Array(65_553).fill((photo * 16 + index) % 251);
    for (let photo = 0; photo < 4; photo++)
      assert.equal(await store.createPhoto("camp", `p${photo}`, 16, 1), "created");
    let next = 0;
    const writer = async (): Promise<void> => {
      for (let job = next++; job < 64; job = next++) {
        const photo = Math.floor(job / 16);
        const index = job % 16;
        const result = await store.putPhotoChunks("camp", `p${photo}`, index, [chunk(photo, index)], 1);
        assert.equal(result.status, "stored");
      }
    };
    await Promise.all(Array.from({ length: 8 }, writer));
    // Without checkpoints the WAL would hold all 4 MiB; with the bound it holds at most 64 frames
    // plus one batch (at most 8 chunks: 136 frames and their pages of the tree), then restarts.
    const wal = await stat(join(dataDir, "relay.sqlite-wal"));
    assert.ok(wal.size <= 32 + (64 + 8 * 17 + 16) * (24 + 4_096), `WAL of ${wal.size} bytes`);
    await store.close();
    const reopened = await SqliteStore.open({ dataDir });
    for (let photo = 0; photo < 4; photo++) {
      for (let index = 0; index < 16; index++) {
        assert.deepEqual(await reopened.getPhotoChunk("camp", `p${photo}`, index), chunk(photo, index));
      }
    }
    await reopened.close();
  });

  it("a failed checkpoint poisons the store like a failed sync", async () => {
    const dataDir = join(await tempDir(), "data");
    const faults = new WriteFaultInjector();
    // A checkpoint after every synced commit.
    const store = await SqliteStore.open({ dataDir, faults, checkpointFrames: 1 });
    faults.failNextCheckpoint();
    // The write is on disk (its sync succeeded) before the checkpoint after it fails.
    assert.equal(await store.createCampaign(record), true);
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(store.ping(), { code: "store-unavailable" });
    await assert.rejects(store.submitEnvelope("camp", "c2", new Uint8Array([2]), 1), { code: "store-unavailable" });
    await store.close();
    const reopened = await SqliteStore.open({ dataDir });
    assert.equal((await reopened.getCampaign("camp"))?.campaignId, "camp");
    await reopened.close();
  });

  it("migrates the message ids of schema 4 (WITHOUT ROWID) to the rowid table: retries stay duplicates", async () => {
    const dataDir = join(await tempDir(), "data");
    const store = await SqliteStore.open({ dataDir });
    await store.createCampaign(record);
    await store.close();
    // Put the messages table back as schema 4 had it, with one accepted message in it.
    const { default: Database } = await import("better-sqlite3");
    const { createHash } = await import("node:crypto");
    const db = new Database(join(dataDir, "relay.sqlite"));
    db.exec(`
      DROP TABLE messages;
      CREATE TABLE messages (
        campaign_id TEXT NOT NULL REFERENCES campaigns ON DELETE CASCADE,
        message_id TEXT NOT NULL,
        digest BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, message_id)
      ) WITHOUT ROWID;
      CREATE INDEX messages_by_time ON messages (received_at);
    `);
    const envelope = new Uint8Array([1, 2, 3]);
    db.prepare("INSERT INTO messages VALUES (?, ?, ?, ?)").run(
      "camp",
      "old",
      createHash("sha256").update(envelope).digest(),
      5,
    );
    db.pragma("user_version = 4");
    db.close();
    const migrated = await SqliteStore.open({ dataDir });
    assert.deepEqual(await migrated.submitEnvelope("camp", "old", envelope, 6), { status: "duplicate" });
    assert.deepEqual(await migrated.submitEnvelope("camp", "old", new Uint8Array([9]), 6), { status: "conflict" });
    assert.deepEqual(await migrated.submitEnvelope("camp", "new", envelope, 6), { status: "accepted" });
    assert.deepEqual(await migrated.submitEnvelope("camp", "new", envelope, 6), { status: "duplicate" });
    // Retention still finds them by time.
    assert.ok((await migrated.expire(6, 6)) >= 1);
    assert.deepEqual(await migrated.submitEnvelope("camp", "old", new Uint8Array([9]), 7), { status: "accepted" });
    await migrated.close();
  });

  it("refuses to open a database from a newer schema", async () => {
    const dataDir = join(await tempDir(), "data");
    const store = await SqliteStore.open({ dataDir });
    await store.close();
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(join(dataDir, "relay.sqlite"));
    db.pragma("user_version = 99");
    db.close();
    await assert.rejects(SqliteStore.open({ dataDir }), /newer/);
  });
});
