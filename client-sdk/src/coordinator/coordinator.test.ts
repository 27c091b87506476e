import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { controlSignersOf, initSodium, openControl, sha256, toHex, verifyRoster } from "@testigo/protocol";
import Database from "better-sqlite3";
import { MIN_KDF_LIMITS } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { type ActaPhoto, actaPhotos } from "../testing/acta-photos.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { initCampaign } from "./campaign.js";
import { bytesOf, CoordinatorDevice } from "./device.js";
import { CoordinatorError } from "./errors.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { TestVolunteer } from "./node-test-volunteer.js";
import { MemoryOutput, QUARANTINE_REASON } from "./output.js";
import { listVolunteers } from "./volunteers.js";
import { requestWipe } from "./wipe.js";

/** Many requests from one address in a short test: lift the relay's per-credential rate limit. */
const RELAY_ENV = { TESTIGO_RATE_CAPACITY: "1000000", TESTIGO_RATE_REFILL_PER_SECOND: "1000000" };
const PASSPHRASE = "correct horse battery";
const PHOTO = (actaPhotos(1)[0] as ActaPhoto).bytes;

describe("coordinator device against a real relay process", () => {
  let relay: RelayProcess;
  let storage: MemoryStorage;
  let device: CoordinatorDevice;
  let campaignId: string;

  before(async () => {
    await initSodium();
    relay = await startRelay({ env: RELAY_ENV });
    storage = new MemoryStorage();
    const result = await initCampaign(storage, {
      relayUrl: relay.url,
      passphrase: PASSPHRASE,
      operatorToken: relay.token,
      kdfLimits: MIN_KDF_LIMITS,
    });
    campaignId = result.campaignId;
    assert.match(result.fingerprint, /^([0-9A-Z]{4} ){6}[0-9A-Z]{2}$/);
    device = await CoordinatorDevice.open(storage, PASSPHRASE);
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  it("registers the campaign with a roster that verifies against the root fingerprint", async () => {
    const roster = verifyRoster(await device.client.getRoster(campaignId), bytesOf(device.config.rootFingerprint));
    assert.equal(roster.serial, 1);
    assert.deepEqual(
      roster.devices.map((d) => d.id),
      [device.config.deviceId],
    );
    const published = await device.client.getEpochKeys(campaignId);
    assert.equal(published[device.config.deviceId]?.length, 2, "current and next epoch key");
  });

  it("refuses a wrong passphrase and a short one", async () => {
    await assert.rejects(CoordinatorDevice.open(storage, "wrong passphrase"), (e: unknown) => {
      return e instanceof CoordinatorError && e.code === "WRONG_PASSPHRASE";
    });
    await assert.rejects(
      initCampaign(new MemoryStorage(), {
        relayUrl: relay.url,
        passphrase: "short",
        operatorToken: relay.token,
      }),
      (e: unknown) => e instanceof CoordinatorError && e.code === "WEAK_PASSPHRASE",
    );
  });

  it("enrolls volunteers through invites and writes their reports and photos exactly once", async () => {
    const invites = await mintInvites(device, { count: 2, label: "centro 14" });
    assert.equal(invites.length, 2);
    const a = await TestVolunteer.enroll(invites[0]?.code ?? "", campaignId);
    const b = await TestVolunteer.enroll(invites[1]?.code ?? "", campaignId);
    const statusId = await a.status("1401023.3", "polls opened");
    const duressId = await b.status("1401023.4", "all calm", "duress");
    const actaId = await a.acta("1401023.3", [PHOTO], { actaFirst: true });

    const output = new MemoryOutput();
    const summary = await fetchInbox(device, output, { limit: 3 });
    assert.equal(summary.quarantined, 0);
    assert.equal(summary.photos, 1);
    const ids = output.reports.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, "no duplicates");
    for (const id of [statusId, duressId, actaId]) assert.ok(ids.includes(id), id);
    assert.equal(output.reports.filter((r) => r.kind === "enrolled").length, 2);
    const acta = output.reports.find((r) => r.id === actaId);
    const photo = acta?.photos?.[0];
    assert.equal(photo?.sha256, toHex(sha256(PHOTO)));
    assert.deepEqual(output.photos.get(photo?.path ?? ""), PHOTO, "byte-identical photo");
    assert.ok(photo?.path?.endsWith(".jpg"));
    const duress = output.reports.find((r) => r.id === duressId);
    assert.equal(duress?.kind, "duress");
    assert.equal(duress?.volunteer, b.pseudonym);

    // Everything was acked: a second fetch writes nothing.
    const again = await fetchInbox(device, output);
    assert.equal(again.written, 0);
    assert.equal(output.reports.length, ids.length);

    const views = await listVolunteers(device);
    const viewB = views.find((v) => v.pseudonym === b.pseudonym);
    assert.equal(viewB?.duress, true);
    assert.equal(viewB?.inviteLabel, "centro 14");
    assert.equal(viewB?.revoked, false);
    assert.equal(views.find((v) => v.pseudonym === a.pseudonym)?.counts.acta, 1);
  });

  it("re-delivered items that were already written are acked, not written again", async () => {
    const [invite] = await mintInvites(device, { count: 1 });
    const v = await TestVolunteer.enroll(invite?.code ?? "", campaignId);
    await v.status("7", "one");
    const output = new MemoryOutput();
    // Stop right after the lines are durable, before the ack: like a kill -9 at that point.
    await assert.rejects(
      fetchInbox(device, output, {
        onStep: (step) => {
          if (step === "lines") throw new Error("killed");
        },
      }),
      /killed/,
    );
    assert.equal(output.reports.length, 2);
    const summary = await fetchInbox(device, output);
    assert.equal(summary.written, 0);
    assert.equal(summary.alreadyWritten, 2);
    assert.equal(output.reports.length, 2);
  });

  it("sends a wipe the volunteer's device can open, with a fresh counter", async () => {
    const [invite] = await mintInvites(device, { count: 1 });
    const v = await TestVolunteer.enroll(invite?.code ?? "", campaignId);
    await fetchInbox(device, new MemoryOutput());
    const first = await requestWipe(device, v.pseudonym);
    const second = await requestWipe(device, v.pseudonym);
    assert.ok(second.counter > first.counter);
    const slots = await v.client.readMailbox();
    const roster = verifyRoster(await v.client.getRoster(campaignId), bytesOf(device.config.rootFingerprint));
    const opened = slots.flatMap((slot) => {
      try {
        return [
          openControl(bytesOf(slot.message), {
            campaignId,
            me: { pseudonym: v.pseudonym, encryption: v.keys.encryption },
            signers: controlSignersOf(roster),
            lastCounterOf: () => 0,
            now: Date.now(),
          }),
        ];
      } catch {
        return [];
      }
    });
    assert.deepEqual(opened.map((o) => o.payload.kind).sort(), ["wipe", "wipe"]);
    assert.equal((await device.volunteer(v.pseudonym))?.wipe, "requested");
    await assert.rejects(requestWipe(device, "v-0000000000000000"), /no enrolled volunteer/);
  });

  it("quarantines an envelope altered in the relay's database, and never writes it as a report", async () => {
    const [invite] = await mintInvites(device, { count: 1 });
    const v = await TestVolunteer.enroll(invite?.code ?? "", campaignId);
    await fetchInbox(device, new MemoryOutput());
    const goodId = await v.status("9", "fine");
    const badId = await v.status("9", "will be altered");
    await relay.stop();
    const db = new Database(`${relay.dataDir}/relay.sqlite`);
    const row = db.prepare("SELECT seq, envelope FROM inbox WHERE item_id = ?").get(badId) as {
      seq: number;
      envelope: Buffer;
    };
    const altered = Buffer.from(row.envelope);
    altered[altered.length - 20] = (altered[altered.length - 20] ?? 0) ^ 1;
    db.prepare("UPDATE inbox SET envelope = ? WHERE seq = ?").run(altered, row.seq);
    db.close();
    await relay.restart();

    const output = new MemoryOutput();
    const summary = await fetchInbox(device, output);
    assert.equal(summary.quarantined, 1);
    assert.deepEqual(
      output.reports.map((r) => r.id),
      [goodId],
    );
    assert.equal(output.quarantine.get(badId)?.reason, QUARANTINE_REASON.undecryptable);
    assert.equal((await device.counters()).quarantined, 1);
    // Acked after quarantine: it does not come back.
    assert.equal((await fetchInbox(device, output)).quarantined, 0);
  });

  it("rotates epoch keys and erases private keys past their deletion time", async () => {
    const later = Date.now() + 40 * 24 * 60 * 60 * 1000;
    const moved = new CoordinatorDevice(device.store, device.config, { now: () => later });
    const before = (await moved.epochRecords()).map((r) => r.epoch);
    const result = await moved.maintainEpochKeys();
    assert.equal(result.created, 2);
    assert.equal(result.erased, before.length);
    const after = (await moved.epochRecords()).map((r) => r.epoch);
    for (const epoch of before) assert.ok(!after.includes(epoch));
    assert.equal(after.length, 2);
  });
});
