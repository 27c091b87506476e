// Regression (was test/pending/rate-limited-fetch.test.mjs): with the relay's DEFAULT request
// budget (120 per session, refilled at 10/s) `testigo coordinator fetch` could not download an
// 8 MiB acta photo: it asked for every chunk at once, stopped with RATE_LIMITED, and started the
// photo again from chunk 0 on every run. Now one run completes, and a fetch killed mid-photo
// (SIGKILL) resumes from the chunks it kept. Real relay process, real `testigo` processes.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type RelayProcess, startRelay } from "@testigo/client-sdk/testing";
import {
  type CoordinatorDevice,
  enroll,
  type FetchSummary,
  fetchArgs,
  initCoordinator,
  invite,
  partialBytes,
  photoFile,
  readReports,
  type SentPhoto,
  sendActa,
  sha256Hex,
} from "./helpers/campaign.js";
import { collect, startTestigo, testigo } from "./helpers/cli.js";
import { syntheticPhoto } from "./helpers/photos.js";

const MIB = 1024 * 1024;

describe("coordinator fetch of large photos with the relay's default rate limits", () => {
  let work: string;
  let relay: RelayProcess;
  let coordinator: CoordinatorDevice;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "testigo-rate-limited-"));
    relay = await startRelay(); // default rate limits
    coordinator = await initCoordinator(work, "coord", relay.url, relay.token);
  });
  after(async () => {
    await relay?.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  });

  async function actaFrom(name: string, size: number): Promise<SentPhoto> {
    const [code = ""] = await invite(coordinator, 1);
    const volunteer = await enroll(work, name, code);
    const synthetic = syntheticPhoto(size);
    const photo = photoFile(join(work, `${name}-camera`), "acta.jpg", synthetic.bytes, synthetic.exifMarker);
    await sendActa(volunteer, [photo]);
    return photo;
  }

  const fetchFlags = (out: string) => fetchArgs(coordinator, out);

  it("fetches an 8 MiB acta photo in ONE run, byte-identical", async () => {
    const photo = await actaFrom("phone-8mib", 8 * MIB);
    const out = join(work, "out-8mib");
    const run = await testigo(fetchFlags(out));
    assert.equal(run.code, 0, `fetch exits 0\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
    const summary = JSON.parse(run.stdout) as FetchSummary;
    assert.equal(summary.waitingForPhotos, 0);
    assert.equal(summary.photos, 1);
    const actas = readReports(out).filter((r) => r.kind === "acta");
    assert.equal(actas.length, 1);
    const line = actas[0]?.photos?.[0];
    assert.equal(line?.sha256, photo.sha256);
    assert.ok(line?.path);
    assert.equal(sha256Hex(readFileSync(join(out, line.path))), photo.sha256, "byte-identical on disk");
  });

  it("resumes a fetch killed (SIGKILL) mid-photo from the chunks it kept, without duplicates", async () => {
    const photo = await actaFrom("phone-resume", 8 * MIB);
    const out = join(work, "out-resume");
    const partial = join(out, "partial");
    const keptBytes = () => partialBytes(out);
    const child = startTestigo(fetchFlags(out));
    const done = collect(child);
    let exited = false;
    child.once("exit", () => {
      exited = true;
    });
    // Kill once some chunks are kept (synced every 16 chunks): well inside the photo.
    while (!exited && keptBytes() < 20 * 65_553) await new Promise((resolve) => setTimeout(resolve, 10));
    child.kill("SIGKILL");
    const killed = await done;
    const kept = keptBytes();
    if (killed.signal === "SIGKILL") assert.ok(kept > 0, "chunks were kept for the next run");

    const run = await testigo(fetchFlags(out));
    assert.equal(run.code, 0, `fetch exits 0\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
    const actas = readReports(out).filter((r) => r.kind === "acta");
    assert.equal(actas.length, 1, "the acta is written exactly once");
    const line = actas[0]?.photos?.[0];
    assert.ok(line?.path);
    assert.equal(sha256Hex(readFileSync(join(out, line.path))), photo.sha256, "byte-identical after resuming");
    assert.deepEqual(readdirSync(partial), [], "the kept chunks are removed once the photo is written");
    assert.ok(
      readdirSync(join(out, "photos")).every((name) => !name.endsWith(".tmp")),
      "no half-written photo file left",
    );
    assert.ok(!existsSync(join(out, "quarantine", `${line.photoId}.json`)), "not quarantined");
  });
});
