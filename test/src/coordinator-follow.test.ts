// `testigo coordinator fetch --follow`: a real `testigo` process following the live inbox of a
// real relay process. Reports a volunteer sends appear in OUT/reports.jsonl while it runs; the
// relay is killed (SIGKILL) and restarted and the follow carries on by itself; SIGTERM stops it
// cleanly (exit 0); nothing is written twice.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type RelayProcess, startRelay } from "@testigo/client-sdk/testing";
import {
  enroll,
  fetchArgs,
  initCoordinator,
  invite,
  partialBytes,
  photoFile,
  readReports,
  sendActa,
  sendStatus,
  sha256Hex,
} from "./helpers/campaign.js";
import { collect, startTestigo, testigo } from "./helpers/cli.js";
import { syntheticPhoto } from "./helpers/photos.js";

/** Generous: two cores shared with other tests; never a timing assertion, only a bound on waiting. */
const WAIT_MS = 90_000;

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("coordinator fetch --follow (live inbox over WebSocket)", () => {
  let work: string;
  let relay: RelayProcess;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "testigo-follow-"));
    relay = await startRelay();
  });
  after(async () => {
    await relay?.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("writes reports as they arrive, survives a relay SIGKILL + restart, stops on SIGTERM with exit 0", async () => {
    const coordinator = await initCoordinator(work, "coord", relay.url, relay.token);
    const [code = ""] = await invite(coordinator, 1);
    const volunteer = await enroll(work, "phone", code);
    const out = join(work, "out");
    const texts = () => {
      try {
        return readReports(out).map((r) => r.text ?? "");
      } catch {
        return [];
      }
    };

    const follow = startTestigo(fetchArgs(coordinator, out, "--follow", "--interval", "2"));
    const finished = collect(follow);
    let exited = false;
    follow.once("exit", () => {
      exited = true;
    });

    await sendStatus(volunteer);
    const first = volunteer.sent[0]?.text ?? "";
    await until("the first report in reports.jsonl", () => exited || texts().includes(first));
    assert.ok(!exited, "follow keeps running");

    await relay.kill9();
    await relay.restart();
    await sendStatus(volunteer);
    const second = volunteer.sent[1]?.text ?? "";
    await until("the report sent after the relay's restart", () => exited || texts().includes(second));
    assert.ok(!exited, "follow survived the relay's crash");

    follow.kill("SIGTERM");
    const run = await finished;
    assert.equal(run.code, 0, `follow exits 0 on SIGTERM\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
    const lines = readReports(out);
    const ids = lines.map((l) => l.id);
    assert.equal(new Set(ids).size, ids.length, "no duplicates");
    assert.deepEqual(
      lines.filter((l) => l.kind === "status").map((l) => l.text),
      [first, second],
      "each report written once, in order",
    );
    // --json: one line per batch, then the totals; the last one counts everything written.
    const docs = run.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { ok: boolean; written: number; quarantinedTotal?: number });
    assert.ok(docs.every((d) => d.ok));
    assert.equal(docs.at(-1)?.written, lines.length);
    assert.equal(readFileSync(join(out, "reports.jsonl"), "utf8").endsWith("\n"), true);
  });

  it("stops on SIGTERM in the middle of a photo (exit 0); the next fetch finishes it from the kept chunks", async () => {
    const coordinator = await initCoordinator(work, "coord-photo", relay.url, relay.token);
    const [code = ""] = await invite(coordinator, 1);
    const volunteer = await enroll(work, "phone-photo", code);
    const synthetic = syntheticPhoto(8 * 1024 * 1024);
    const photo = photoFile(join(work, "camera-photo"), "acta.jpg", synthetic.bytes, synthetic.exifMarker);
    await sendActa(volunteer, [photo]);
    const out = join(work, "out-photo");
    const partial = join(out, "partial");
    const kept = () => partialBytes(out);

    const follow = startTestigo(fetchArgs(coordinator, out, "--follow"));
    const finished = collect(follow);
    let exited = false;
    follow.once("exit", () => {
      exited = true;
    });
    await until("the photo download to start", () => exited || kept() > 0);
    follow.kill("SIGTERM");
    const run = await finished;
    assert.equal(run.code, 0, `follow exits 0 on SIGTERM\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);

    const again = await testigo(fetchArgs(coordinator, out));
    assert.equal(again.code, 0, again.stderr);
    const actas = readReports(out).filter((r) => r.kind === "acta");
    assert.equal(actas.length, 1, "the acta is written exactly once");
    const line = actas[0]?.photos?.[0];
    assert.ok(line?.path);
    assert.equal(sha256Hex(readFileSync(join(out, line.path))), photo.sha256, "byte-identical");
    assert.deepEqual(readdirSync(partial), [], "kept chunks removed once the photo is written");
  });
});
