// A volunteer without a relay, and a volunteer killed mid-upload (issue 4), through the `testigo`
// command against a real relay process on the embedded store:
// - `volunteer report` while the relay is down exits 3 with the documented message and keeps the
//   report; `volunteer sync` once the relay is back delivers it, exactly once;
// - `volunteer acta` of an 8 MiB photo is killed with SIGKILL after some of its chunks reached
//   the relay (seen in the relay's request log); `volunteer sync` uploads only the missing
//   chunks, and the coordinator gets the acta once with the photo byte-identical.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { API, initSodium, MAX_CHUNK_RUN } from "@testigo/protocol";
import {
  type CoordinatorDevice,
  enroll,
  fetchAll,
  initCoordinator,
  invite,
  marker,
  photoFile,
  type ReportLine,
  readReports,
  type SentPhoto,
  sha256Hex,
  type VolunteerDevice,
} from "./helpers/campaign.js";
import { collect, startTestigo, testigo, testigoOk } from "./helpers/cli.js";
import { syntheticPhoto } from "./helpers/photos.js";
import { type LoggedRelay, startLoggedRelay } from "./helpers/relay.js";

const LARGE_PHOTO_BYTES = 8 * 1024 * 1024;
/** Kill attempts before giving up on landing one mid-upload. */
const MAX_ATTEMPTS = 6;

interface Outbox {
  readonly envelopes: number;
  readonly actas: number;
  readonly photos: number;
  readonly chunks: number;
  readonly refused: number;
  readonly kept: number;
}

interface SyncResult {
  readonly ok: boolean;
  readonly sent: { envelopes: number; photos: number; chunks: number };
  readonly unreachable: string | null;
  readonly outbox: Outbox;
}

describe("an offline volunteer, and a volunteer killed mid-upload (embedded store)", () => {
  let work: string;
  let relay: LoggedRelay;
  let coordinator: CoordinatorDevice;
  let volunteer: VolunteerDevice;
  let out: string;

  const status = async (): Promise<{ outbox: Outbox; pseudonym: string }> => {
    const run = await testigoOk([
      "volunteer",
      "status",
      "--dir",
      volunteer.dir,
      "--pin-file",
      volunteer.pinFile,
      "--json",
    ]);
    return JSON.parse(run.stdout) as { outbox: Outbox; pseudonym: string };
  };
  const sync = async (): Promise<SyncResult> => {
    const run = await testigoOk([
      "volunteer",
      "sync",
      "--dir",
      volunteer.dir,
      "--pin-file",
      volunteer.pinFile,
      "--json",
    ]);
    return JSON.parse(run.stdout) as SyncResult;
  };
  const linesFor = (table: string): ReportLine[] => readReports(out).filter((line) => line.table === table);

  before(async () => {
    await initSodium();
    work = mkdtempSync(join(tmpdir(), "testigo-e2e-offline-"));
    // A larger per-credential request budget than the default (120, refilled at 10/s): with the
    // default, `coordinator fetch` cannot download an 8 MiB photo (129 chunk requests) — it
    // stops with RATE_LIMITED (exit 3) and the next run starts the photo over (reported).
    relay = await startLoggedRelay({ env: { TESTIGO_RATE_CAPACITY: "5000", TESTIGO_RATE_REFILL_PER_SECOND: "500" } });
    coordinator = await initCoordinator(work, "coord", relay.url, relay.token);
    const [code] = await invite(coordinator, 1);
    volunteer = await enroll(work, "phone", code as string);
    out = join(work, "out");
  });
  after(async () => {
    await relay?.remove();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it("keeps a report sent while the relay is down (exit 3) and `volunteer sync` delivers it once", async () => {
    await relay.stop();
    const table = marker();
    const text = `witness blocked ${marker()}`;
    const offline = await testigo([
      "volunteer",
      "report",
      "--dir",
      volunteer.dir,
      "--table",
      table,
      "--text",
      text,
      "--pin-file",
      volunteer.pinFile,
      "--timeout",
      "1",
    ]);
    assert.equal(offline.code, 3, offline.stderr);
    assert.ok(
      offline.stderr.includes(
        `testigo: relay unreachable at ${relay.url}: the report is kept in the outbox and will be sent by \`testigo volunteer sync\`\n`,
      ),
      `the documented message, got: ${offline.stderr}`,
    );
    assert.equal((await status()).outbox.envelopes, 1, "the report waits in the outbox");

    await relay.restart();
    const synced = await sync();
    assert.equal(synced.ok, true);
    assert.equal(synced.sent.envelopes, 1);
    assert.equal(synced.outbox.envelopes, 0);
    const again = await sync();
    assert.equal(again.sent.envelopes, 0, "a second sync sends nothing again");

    await fetchAll(coordinator, out);
    const lines = linesFor(table);
    assert.equal(lines.length, 1, "delivered exactly once");
    assert.equal(lines[0]?.kind, "status");
    assert.equal(lines[0]?.text, text);
    assert.equal(lines[0]?.volunteer, volunteer.pseudonym);
  });

  it("survives kill -9 of `volunteer acta` mid-upload: after `volunteer sync` the photo arrives once, intact", async (t) => {
    interface Attempt {
      readonly table: string;
      readonly photo: SentPhoto;
      /** The process ended by itself (before the kill landed). */
      readonly finished: boolean;
      /** The outbox after the kill. */
      readonly outbox: Outbox;
      /** Chunk uploads the relay accepted during this run. */
      readonly chunksAccepted: number;
    }
    const attempts: Attempt[] = [];
    let midUpload: Attempt | undefined;
    for (let i = 0; i < MAX_ATTEMPTS && midUpload === undefined; i++) {
      const synthetic = syntheticPhoto(LARGE_PHOTO_BYTES);
      const photo = photoFile(join(work, "camera"), `large-${i}.jpg`, synthetic.bytes, synthetic.exifMarker);
      const table = marker();
      const chunksBefore = acceptedChunkUploads(relay.logs());
      const child = startTestigo([
        "volunteer",
        "acta",
        "--dir",
        volunteer.dir,
        "--table",
        table,
        "--pin-file",
        volunteer.pinFile,
        photo.path,
      ]);
      const done = collect(child);
      let exited = false;
      void done.then(() => {
        exited = true;
      });
      // Wait until a few chunks (2 to 20, at random) reached the relay, then kill at once.
      const threshold = chunksBefore + 2 + Math.floor(Math.random() * 19);
      while (!exited && acceptedChunkUploads(relay.logs()) < threshold) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      child.kill("SIGKILL");
      const result = await done;
      const after = await status();
      const attempt = {
        table,
        photo,
        finished: result.signal !== "SIGKILL",
        outbox: after.outbox,
        chunksAccepted: acceptedChunkUploads(relay.logs()) - chunksBefore,
      };
      attempts.push(attempt);
      if (attempt.finished) assert.equal(result.code, 0, result.stderr);
      if (!attempt.finished && attempt.outbox.photos > 0 && attempt.chunksAccepted > 0) midUpload = attempt;
    }
    assert.ok(
      midUpload !== undefined,
      `one of ${attempts.length} kills landed mid-upload: ${JSON.stringify(attempts.map((a) => [a.finished, a.outbox, a.chunksAccepted]))}`,
    );

    const synced = await sync();
    assert.equal(synced.ok, true);
    assert.equal(synced.sent.photos, 1, "the interrupted photo is finished");
    assert.ok(
      synced.sent.chunks < midUpload.outbox.chunks,
      `only the missing chunks were uploaded (${synced.sent.chunks} of ${midUpload.outbox.chunks})`,
    );
    assert.deepEqual(
      [synced.outbox.envelopes, synced.outbox.photos, synced.outbox.chunks],
      [0, 0, 0],
      "nothing left in the outbox",
    );

    t.diagnostic(
      `kills: ${attempts.length}; mid-upload kill after ${midUpload.chunksAccepted} chunks accepted; ` +
        `sync uploaded ${synced.sent.chunks} of ${midUpload.outbox.chunks} chunks`,
    );
    await fetchAll(coordinator, out);
    const ids = readReports(out).map((line) => line.id);
    assert.equal(new Set(ids).size, ids.length, "no duplicate ids in reports.jsonl");
    for (const attempt of attempts) {
      const lines = linesFor(attempt.table);
      // A kill before the outbox index was written leaves nothing queued: then no acta at all.
      if (attempt === midUpload || attempt.finished) assert.equal(lines.length, 1, "the acta arrives exactly once");
      else assert.ok(lines.length <= 1, "at most once");
      for (const line of lines) {
        assert.equal(line.kind, "acta");
        const photos = line.photos ?? [];
        assert.equal(photos.length, 1);
        assert.equal(photos[0]?.status, "ok");
        assert.equal(photos[0]?.sha256, attempt.photo.sha256, "reports.jsonl has the photo's SHA-256");
        const written = readFileSync(join(out, photos[0]?.path ?? ""));
        assert.equal(sha256Hex(written), attempt.photo.sha256, "the photo is byte-identical");
      }
    }
  });
});

/**
 * Chunks the relay answered with 2xx, counted from its request log (method + route only): a
 * single upload counts one, a run counts MAX_CHUNK_RUN (the SDK sends full runs but for a
 * photo's last one, which the log does not tell apart).
 */
function acceptedChunkUploads(logs: string): number {
  let count = 0;
  for (const line of logs.split("\n")) {
    if (!line.includes(API.putChunk.path) && !line.includes(API.putChunkRun.path)) continue;
    try {
      const entry = JSON.parse(line) as { req?: { method?: string; route?: string }; res?: { statusCode?: number } };
      const code = entry.res?.statusCode ?? 0;
      if (entry.req?.method !== "PUT" || code < 200 || code >= 300) continue;
      if (entry.req.route === API.putChunk.path) count++;
      else if (entry.req.route === API.putChunkRun.path) count += MAX_CHUNK_RUN;
    } catch {
      // a line torn by the reader racing the writer: counted next time
    }
  }
  return count;
}
