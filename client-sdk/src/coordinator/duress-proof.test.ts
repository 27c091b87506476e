// Issue 5 review (the reviewer's poc-hijack): a relay insider holding one invite learns a victim's
// signing key at the victim's enrollment, enrolls its own device and announces that key (or the
// victim's duress key) as ITS duress key in its `enrolled` report, delivered first. Coordinators
// now accept a duress key only with D's own proof: the thief is enrolled without a duress key and
// its report quarantined as a security alert; the victim enrolls and its reports are its own, not
// flagged. Real relay process, real HTTP. (The honest relay refuses such an enrollment itself, so
// the thief here enrolls its own D at the relay and lies only in its report, which the relay
// cannot read: the coordinators' check is what stops it.)
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayProcess } from "../testing/relay-process.js";
import type { CoordinatorDevice } from "./device.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { TestVolunteer } from "./node-test-volunteer.js";
import { MemoryOutput, QUARANTINE_REASON } from "./output.js";
import { startCoordinatorOnRelay } from "./test-coordinator-on-relay.js";
import { listVolunteers } from "./volunteers.js";

const PASSPHRASE = "duress proof passphrase";

describe("the duress key's proof of possession (real relay process)", () => {
  let relay: RelayProcess;
  let device: CoordinatorDevice;
  let campaignId: string;
  const invite = async () => (await mintInvites(device, { count: 1 }))[0]?.code ?? "";
  const security = async () => (await device.counters()).security ?? 0;
  const view = async (pseudonym: string) => (await listVolunteers(device)).find((v) => v.pseudonym === pseudonym);

  before(async () => {
    ({ relay, device, campaignId } = await startCoordinatorOnRelay(PASSPHRASE));
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  it("poc-hijack: the victim's signing key announced as the thief's duress key captures nothing", async () => {
    const victim = await TestVolunteer.enroll(await invite(), campaignId, { sendEnrolled: false });
    const thief = await TestVolunteer.enroll(await invite(), campaignId, {
      announceDuressKey: victim.keys.signing.publicKey,
    });
    const before = await security();
    const first = new MemoryOutput();
    await fetchInbox(device, first);
    assert.deepEqual(first.reports, []);
    assert.deepEqual(
      [...first.quarantine.values()].map((q) => [q.reason, q.pseudonym]),
      [[QUARANTINE_REASON.duressProofInvalid, thief.pseudonym]],
    );
    assert.equal(await security(), before + 1);
    // The thief is enrolled, without a duress key, and marked with a security alert.
    const thiefView = await view(thief.pseudonym);
    assert.equal(thiefView?.security, 1);
    assert.equal(thiefView?.duress, false);

    // The victim's enrolled report (delayed by the relay) and a genuine status.
    await victim.sendEnrolled();
    await victim.status("T-17", "genuine report from the victim");
    const second = new MemoryOutput();
    await fetchInbox(device, second);
    assert.deepEqual(
      second.reports.map((r) => [r.volunteer, r.kind, r.text, r.afterDuress ?? false]),
      [
        [victim.pseudonym, "enrolled", "", false],
        [victim.pseudonym, "status", "genuine report from the victim", false],
      ],
    );
    assert.deepEqual([...second.quarantine.values()], []);
    assert.equal((await view(victim.pseudonym))?.duress, false);
    assert.equal((await view(thief.pseudonym))?.duress, false);
    // The thief's own reports are its own (its key is proven), never flagged as anyone's duress.
    await thief.status("T-18", "from the thief");
    const third = new MemoryOutput();
    await fetchInbox(device, third);
    assert.deepEqual(
      third.reports.map((r) => [r.volunteer, r.kind, r.afterDuress ?? false]),
      [[thief.pseudonym, "status", false]],
    );
  });

  it("the victim's duress key announced first does not block the victim, whose D still works", async () => {
    const victim = await TestVolunteer.enroll(await invite(), campaignId, { sendEnrolled: false });
    const thief = await TestVolunteer.enroll(await invite(), campaignId, {
      announceDuressKey: victim.duress.publicKey,
    });
    const first = new MemoryOutput();
    await fetchInbox(device, first);
    assert.deepEqual(
      [...first.quarantine.values()].map((q) => [q.reason, q.pseudonym]),
      [[QUARANTINE_REASON.duressProofInvalid, thief.pseudonym]],
    );
    await victim.sendEnrolled();
    await victim
      .duressClient()
      .submitEnvelope(await victim.seal(victim.message("status", "9", ""), victim.duressSigner));
    const second = new MemoryOutput();
    await fetchInbox(device, second);
    // Not quarantined as duressKeyTaken: the thief's unproven claim was never recorded.
    assert.deepEqual([...second.quarantine.values()], []);
    assert.deepEqual(
      second.reports.map((r) => [r.volunteer, r.kind, r.signedKind ?? null]),
      [
        [victim.pseudonym, "enrolled", null],
        [victim.pseudonym, "duress", "status"],
      ],
    );
    assert.equal((await view(victim.pseudonym))?.duress, true);
    assert.equal((await view(thief.pseudonym))?.duress, false);
  });

  it("an enrolled report announcing a duress key without any proof: enrolled without it, alerted", async () => {
    const bare = await TestVolunteer.enroll(await invite(), campaignId, { omitDuressProof: true });
    const before = await security();
    const first = new MemoryOutput();
    await fetchInbox(device, first);
    assert.deepEqual(
      [...first.quarantine.values()].map((q) => [q.reason, q.pseudonym]),
      [[QUARANTINE_REASON.duressProofInvalid, bare.pseudonym]],
    );
    assert.equal(await security(), before + 1);
    // Its own reports are filed; what its (unproven) duress key signs is an unknown signer.
    await bare.status("1", "mine");
    await bare.duressClient().submitEnvelope(await bare.seal(bare.message("status", "2", ""), bare.duressSigner));
    const second = new MemoryOutput();
    await fetchInbox(device, second);
    assert.deepEqual(
      second.reports.map((r) => [r.volunteer, r.kind, r.afterDuress ?? false]),
      [[bare.pseudonym, "status", false]],
    );
    assert.deepEqual(
      [...second.quarantine.values()].map((q) => q.reason),
      [QUARANTINE_REASON.unknownSender],
    );
  });

  it("an enrolled report signed by an enrolled volunteer's duress key is a security quarantine", async () => {
    const a = await TestVolunteer.enroll(await invite(), campaignId);
    await fetchInbox(device, new MemoryOutput());
    const before = await security();
    // Twice: the first in a fresh run (the duress key found in the registry), the second with it cached.
    await a.duressClient().submitEnvelope(await a.seal(a.message("enrolled", "0", ""), a.duressSigner));
    await a.duressClient().submitEnvelope(await a.seal(a.message("enrolled", "0", ""), a.duressSigner));
    const out = new MemoryOutput();
    await fetchInbox(device, out);
    assert.deepEqual(out.reports, []);
    assert.deepEqual(
      [...out.quarantine.values()].map((q) => q.reason),
      [QUARANTINE_REASON.enrolledByDuressKey, QUARANTINE_REASON.enrolledByDuressKey],
    );
    assert.equal(await security(), before + 2);
    assert.equal((await view(a.pseudonym))?.duress, false);
  });
});
