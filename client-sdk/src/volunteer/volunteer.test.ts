// The volunteer side end to end through a REAL relay child process (relay-process.ts): enroll,
// report, acta with a real acta photo, offline queueing, interrupted uploads, wrong PIN, and a
// scan of the device folder for plaintext.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  initSodium,
  MAX_CHUNK_RUN,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  type PhotoRef,
  sha256,
  toBase64url,
} from "@testigo/protocol";
import { MIN_KDF_LIMITS } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { NodeStorage } from "../storage/node-storage.js";
import type { DeviceStorage } from "../storage/storage.js";
import { type ActaPhoto, actaPhotos, syntheticActa } from "../testing/acta-photos.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import type { HttpTransport } from "../transport/http.js";
import { fetchTransport } from "../transport/http.js";
import { unlockDevice } from "./device.js";
import { enroll } from "./enroll.js";
import { WrongPin } from "./errors.js";
import { type TestCoordinator, testCoordinator } from "./test-coordinator.js";
import { Volunteer } from "./volunteer.js";

const PIN = "246810";
const DURESS = "135799";
function actaPhoto(): Uint8Array {
  return (actaPhotos(1)[0] as ActaPhoto).bytes;
}

const noWait = { sleep: async () => undefined, random: () => 0 };

describe("volunteer through a real relay", () => {
  let relay: RelayProcess;
  let coordinator: TestCoordinator;

  before(async () => {
    await initSodium();
    relay = await startRelay();
    coordinator = await testCoordinator(relay.url, relay.token);
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  async function enrolled(storage: DeviceStorage = new MemoryStorage()) {
    const result = await enroll({
      storage,
      inviteCode: await coordinator.invite(),
      pin: PIN,
      duressPin: DURESS,
      limits: MIN_KDF_LIMITS,
      now: Date.now,
    });
    return { storage, result };
  }

  /**
   * Syncs again after an upload was cut: the photo is sent, reaches the coordinator exactly once
   * and byte for byte. Returns the run and the photo's reference.
   */
  async function resumePhoto(storage: DeviceStorage, photo: Uint8Array) {
    const resumed = await (await Volunteer.open(storage, PIN)).sync({ budgetMs: 5_000, ...noWait });
    assert.equal(resumed.photosSent, 1);
    const total = (await coordinator.fetch()) as {
      messages: { kind: string; photos?: PhotoRef[] }[];
      photos: string[];
    };
    const ref = total.messages[0]?.photos?.[0] as PhotoRef;
    assert.deepEqual(total.photos, [ref.photoId]);
    assert.deepEqual(await coordinator.downloadPhoto(ref), photo);
    return { resumed, ref };
  }

  it("enrolls, sends the enrolled report, a status report and an acta whose photo arrives byte for byte", async () => {
    const { storage, result } = await enrolled();
    assert.match(result.pseudonym, /^v-[0-9A-Z]{16}$/);
    const volunteer = await Volunteer.open(storage, PIN);
    await volunteer.report("1401023.3", "polls opened");
    const photo = actaPhoto();
    const acta = await volunteer.acta({ table: "1401023.3", photos: [photo] });
    assert.equal(acta.sealed, true);
    const sync = await volunteer.sync({ budgetMs: 5_000, ...noWait });
    assert.equal(sync.unreachable, undefined);
    assert.deepEqual([sync.envelopesSent, sync.photosSent], [3, 1]);
    assert.deepEqual((await volunteer.status()).outbox, {
      envelopes: 0,
      actas: 0,
      photos: 0,
      chunks: 0,
      refused: 0,
      kept: 0,
    });

    const { messages, photos } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => m.kind),
      ["enrolled", "status", "acta"],
    );
    // Nothing is reserved any more: the duress report is the decoy's, in the duress key's own seq space.
    assert.deepEqual(
      messages.map((m) => m.seq),
      [0, 1, 2],
    );
    const actaMessage = messages[2];
    assert.ok(actaMessage?.kind === "acta");
    const ref = actaMessage.photos[0] as PhotoRef;
    assert.deepEqual(photos, [ref.photoId]);
    assert.equal(ref.sha256, toBase64url(sha256(photo)));
    assert.deepEqual(await coordinator.downloadPhoto(ref), photo);
  });

  it("keeps reports while the relay is down and delivers them exactly once when it is back", async () => {
    const { storage } = await enrolled();
    const volunteer = await Volunteer.open(storage, PIN);
    await volunteer.sync({ budgetMs: 5_000, ...noWait });
    await coordinator.fetch();

    await relay.stop();
    await volunteer.report("77", "witness blocked");
    const offline = await volunteer.sync({ budgetMs: 200, ...noWait });
    assert.match(offline.unreachable ?? "", /relay unreachable at http:\/\/127\.0\.0\.1/);
    assert.equal((await volunteer.status()).outbox.envelopes, 1);

    await relay.restart();
    const online = await volunteer.sync({ budgetMs: 5_000, ...noWait });
    assert.equal(online.envelopesSent, 1);
    // A second run sends nothing again.
    assert.equal((await volunteer.sync({ budgetMs: 5_000, ...noWait })).envelopesSent, 0);
    const { messages } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => [m.kind, m.text]),
      [["status", "witness blocked"]],
    );
  });

  it("resumes an interrupted photo upload at the first chunk the relay lacks; the photo arrives once, intact", async () => {
    const { storage } = await enrolled();
    await (await Volunteer.open(storage, PIN)).sync({ budgetMs: 5_000, ...noWait });
    await coordinator.fetch();

    // The "crash": the connection dies for good after the 2nd chunk of the upload. This relay
    // does not serve chunk runs (an older relay answers "no such route"), so the SDK sends the
    // chunks one by one; the resumed upload below goes to a current relay, in runs.
    let chunkPuts = 0;
    const dying: HttpTransport = async (request) => {
      if (request.method === "PUT" && request.url.includes("/chunk-runs/")) {
        const body = JSON.stringify({ error: { code: "NOT_FOUND", message: "no such route" } });
        return { status: 404, headers: { "content-type": "application/json" }, body: new TextEncoder().encode(body) };
      }
      if (request.method === "PUT" && request.url.includes("/chunks/") && ++chunkPuts > 2) {
        throw new TypeError("fetch failed");
      }
      return fetchTransport(request);
    };
    const photo = actaPhoto();
    const first = await Volunteer.open(storage, PIN, { transport: dying });
    await first.acta({ table: "55", photos: [photo] });
    const broken = await first.sync({ budgetMs: 100, ...noWait });
    assert.ok(broken.unreachable !== undefined);
    assert.equal(broken.chunksSent, 2);

    const { resumed, ref } = await resumePhoto(storage, photo);
    assert.equal(resumed.chunksSent, ref.chunkCount - 2);
  });

  it("uploads a large photo in runs of chunks; cut after the first run, it resumes with the rest, intact", async () => {
    const { storage } = await enrolled();
    await (await Volunteer.open(storage, PIN)).sync({ budgetMs: 5_000, ...noWait });
    await coordinator.fetch();

    // The connection dies for good once the first run has been answered.
    const runs: number[] = [];
    const dying: HttpTransport = async (request) => {
      if (request.method === "PUT" && request.url.includes("/chunks/")) assert.fail("a single-chunk upload");
      if (request.method === "PUT" && request.url.includes("/chunk-runs/")) {
        if (runs.length > 0) throw new TypeError("fetch failed");
        runs.push((request.body?.length ?? 0) / PHOTO_CHUNK_CIPHERTEXT_BYTES);
      }
      return fetchTransport(request);
    };
    const photo = syntheticActa(40 * 64 * 1024).bytes;
    const first = await Volunteer.open(storage, PIN, { transport: dying });
    await first.acta({ table: "56", photos: [photo] });
    const broken = await first.sync({ budgetMs: 100, ...noWait });
    assert.ok(broken.unreachable !== undefined);
    assert.deepEqual(runs, [MAX_CHUNK_RUN], "one full run reached the relay");
    assert.equal(broken.chunksSent, MAX_CHUNK_RUN);

    const { resumed, ref } = await resumePhoto(storage, photo);
    assert.ok(ref.chunkCount > 2 * MAX_CHUNK_RUN, `a photo of ${ref.chunkCount} chunks spans several runs`);
    assert.equal(resumed.chunksSent, ref.chunkCount - MAX_CHUNK_RUN);
  });

  it("refuses a wrong PIN with the attempts left, changing nothing but the counter; the PIN still opens", async () => {
    const { storage, result } = await enrolled();
    const before = (await storage.list("r")).length;
    await assert.rejects(unlockDevice(storage, "000000"), (error: unknown) => {
      assert.ok(error instanceof WrongPin);
      assert.equal(error.attemptsLeft, 9);
      assert.match(error.message, /wrong PIN: nothing changed; 9 attempts left/);
      return true;
    });
    assert.equal((await storage.list("r")).length, before);
    const real = await Volunteer.open(storage, PIN);
    assert.equal(real.identity.pseudonym, result.pseudonym);
  });

  it("leaves no plaintext in the device folder: no text, table, pseudonym, PIN, keys or photo bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "testigo-volunteer-"));
    try {
      const { result } = await enrolled(await NodeStorage.open(dir));
      const volunteer = await Volunteer.open(await NodeStorage.open(dir), PIN);
      await relay.stop();
      const photo = actaPhoto();
      await volunteer.report("MARKER-TABLE-9", "MARKER-TEXT soldiers at the door");
      await volunteer.acta({ table: "MARKER-TABLE-9", photos: [photo] });
      const markers = [
        "MARKER-TEXT",
        "MARKER-TABLE",
        "soldiers",
        result.pseudonym,
        PIN,
        DURESS,
        volunteer.identity.signing.privateKey,
        volunteer.identity.campaignId,
        coordinator.campaignId,
        "status",
        "acta",
        "enrolled",
        "outbox",
      ];
      const photoSample = Buffer.from(photo.subarray(1000, 1064));
      for (const name of readdirSync(dir)) {
        const bytes = readFileSync(join(dir, name));
        for (const marker of markers) {
          assert.equal(bytes.includes(Buffer.from(marker)), false, `${marker} in ${name}`);
          assert.equal(name.includes(marker), false, `${marker} in a file name`);
        }
        assert.equal(bytes.includes(photoSample), false, `photo bytes in ${name}`);
      }
    } finally {
      await relay.restart();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
