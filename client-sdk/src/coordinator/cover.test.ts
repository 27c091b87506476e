// Issue 5, coordinator side of cover items (protocol/spec/duress-and-wipe.md §2.4): after a duress
// unlock, the decoy sends cover items in the shape of what the erased real profile had queued.
// Coordinators file them as `duress` lines flagged `cover`, and never open (or write) their photos.
// Real relay process, real SDK volunteer with a duress PIN.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MIN_KDF_LIMITS } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { actaPhotos } from "../testing/acta-photos.js";
import type { RelayProcess } from "../testing/relay-process.js";
import { fetchTransport, type HttpTransport } from "../transport/http.js";
import { enroll } from "../volunteer/enroll.js";
import { Volunteer } from "../volunteer/volunteer.js";
import type { CoordinatorDevice } from "./device.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { MemoryOutput } from "./output.js";
import { startCoordinatorOnRelay } from "./test-coordinator-on-relay.js";
import { listVolunteers } from "./volunteers.js";

const PASSPHRASE = "cover items passphrase";
const PIN = "482913";
const DURESS = "771204";
const noWait = { sleep: async () => undefined, random: () => 0 };

describe("cover items at the coordinators (real relay process)", () => {
  let relay: RelayProcess;
  let device: CoordinatorDevice;

  before(async () => {
    ({ relay, device } = await startCoordinatorOnRelay(PASSPHRASE));
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  /** A phone enrolled with a PIN and a duress PIN, its `enrolled` report sent and filed. */
  async function enrolledPhone(): Promise<{ storage: MemoryStorage; real: Volunteer; pseudonym: string }> {
    const [invite] = await mintInvites(device, { count: 1 });
    const storage = new MemoryStorage();
    const { pseudonym } = await enroll({
      storage,
      inviteCode: invite?.code ?? "",
      pin: PIN,
      duressPin: DURESS,
      limits: MIN_KDF_LIMITS,
      now: Date.now,
    });
    const real = await Volunteer.open(storage, PIN);
    await real.sync({ budgetMs: 5_000, ...noWait });
    await fetchInbox(device, new MemoryOutput());
    return { storage, real, pseudonym };
  }

  it("are written as duress lines flagged cover; their photos complete the acta, are never opened nor written", async () => {
    const { storage, real, pseudonym } = await enrolledPhone();
    await real.report("31", "MARKER queued, never sent");
    await real.acta({ table: "31", photos: actaPhotos(2).map((p) => p.bytes), tallies: { A: 40 } });

    const decoy = await Volunteer.open(storage, DURESS);
    const sent = await decoy.flush(10_000);
    assert.deepEqual([sent?.envelopesSent, sent?.photosSent], [2, 2]);
    const output = new MemoryOutput();
    const summary = await fetchInbox(device, output);
    assert.equal(summary.quarantined, 0);
    assert.equal(summary.waitingForPhotos, 0);
    assert.deepEqual(
      output.reports.map((r) => [r.kind, r.signedKind, r.cover, r.volunteer === pseudonym]),
      [
        ["duress", "status", true, true],
        ["duress", "acta", true, true],
      ],
    );
    const acta = output.reports[1];
    assert.deepEqual(
      acta?.photos?.map((p) => [p.status, p.path]),
      [
        ["cover", null],
        ["cover", null],
      ],
    );
    assert.equal(output.photos.size, 0);
    assert.ok(!JSON.stringify(output.reports).includes("MARKER"));
    const [view] = await listVolunteers(device);
    assert.equal(view?.duress, true);
    // Acked: nothing is left in the inbox.
    const again = new MemoryOutput();
    await fetchInbox(device, again);
    assert.deepEqual(again.reports, []);
  });

  it("a photo whose acta left before the duress is completed under its id with cover chunks, and filed as cover", async () => {
    const { storage, real } = await enrolledPhone();
    const queued = await real.acta({ table: "44", photos: actaPhotos(1).map((p) => p.bytes) });
    // The link drops after the acta's envelope: its photo stays queued on the phone.
    const noPhotos: HttpTransport = async (request) => {
      if (request.url.includes("/photos/")) throw new TypeError("fetch failed");
      return fetchTransport(request);
    };
    const cut = await (await Volunteer.open(storage, PIN, { transport: noPhotos })).sync({ budgetMs: 300, ...noWait });
    assert.deepEqual([cut.envelopesSent, cut.photosSent], [1, 0]);
    assert.equal((await fetchInbox(device, new MemoryOutput())).waitingForPhotos, 1);

    const decoy = await Volunteer.open(storage, DURESS);
    assert.equal((await decoy.status()).outbox.photos, 1);
    const sent = await decoy.flush(10_000);
    assert.deepEqual([sent?.envelopesSent, sent?.photosSent], [1, 1]);
    const output = new MemoryOutput();
    const summary = await fetchInbox(device, output);
    assert.deepEqual([summary.quarantined, summary.waitingForPhotos], [0, 0]);
    const acta = output.reports.find((r) => r.kind === "acta");
    assert.equal(acta?.id, queued.id);
    assert.deepEqual(
      acta?.photos?.map((p) => [p.photoId, p.status, p.path]),
      [[queued.photos[0]?.photoId, "cover", null]],
    );
    assert.deepEqual(
      output.reports.filter((r) => r.kind === "duress").map((r) => r.signedKind),
      ["checkin"],
    );
    assert.equal(output.photos.size, 0);
  });
});
