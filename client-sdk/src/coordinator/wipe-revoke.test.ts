// Issue 5, coordinator side, against a real relay process: a wipe-ack gets the volunteer revoked
// at the relay; a wipe not acknowledged by its deadline gets it revoked by the next fetch;
// check-ins and reports are recorded, and a volunteer who sent nothing for too long is "silent".
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { initSodium } from "@testigo/protocol";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { RelayRefused } from "../transport/errors.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { type TestCampaign, testCampaign } from "./node-test-campaign.js";
import { TestVolunteer } from "./node-test-volunteer.js";
import { MemoryOutput } from "./output.js";
import { listVolunteers } from "./volunteers.js";
import { requestWipe } from "./wipe.js";

const HOUR = 60 * 60 * 1000;

describe("wipe, revocation and check-ins (real relay process)", () => {
  let relay: RelayProcess;
  let campaign: TestCampaign;

  before(async () => {
    await initSodium();
    relay = await startRelay();
    campaign = await testCampaign(relay);
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  /** The device as it would be `offsetMs` from now (its clock only; the relay's is real). */
  const device = (offsetMs = 0) => campaign.device({ now: () => Date.now() + offsetMs });

  async function enrolled(): Promise<TestVolunteer> {
    const [invite] = await mintInvites(await device(), { count: 1 });
    const volunteer = await TestVolunteer.enroll(invite?.code ?? "", campaign.campaignId);
    await fetchInbox(await device(), new MemoryOutput());
    return volunteer;
  }

  async function relayRevoked(pseudonym: string): Promise<boolean | undefined> {
    const listed = await (await device()).client.listVolunteers();
    return listed.volunteers.find((v) => v.pseudonym === pseudonym)?.revoked;
  }

  it("revokes at the relay a volunteer whose phone acknowledged the wipe", async () => {
    const volunteer = await enrolled();
    const wipe = await requestWipe(await device(), volunteer.pseudonym);
    await volunteer.wipeAck(wipe.counter);
    const summary = await fetchInbox(await device(), new MemoryOutput());
    assert.equal(summary.revoked, 1);
    assert.equal(await relayRevoked(volunteer.pseudonym), true);
    const view = (await listVolunteers(await device())).find((v) => v.pseudonym === volunteer.pseudonym);
    assert.equal(view?.wipe, "acknowledged");
    assert.equal(view?.revoked, true);
    // The relay now refuses the wiped key's credential.
    await assert.rejects(volunteer.status("1", "after the wipe"), (e: unknown) => e instanceof RelayRefused);
    // Revoked once: the next fetch has nothing more to revoke.
    assert.equal((await fetchInbox(await device(), new MemoryOutput())).revoked, 0);
  });

  it("revokes at the next fetch a volunteer whose wipe deadline passed without an acknowledgement", async () => {
    const volunteer = await enrolled();
    const wipe = await requestWipe(await device(), volunteer.pseudonym, { revokeAfterMs: HOUR });
    assert.equal(Date.parse(wipe.revokeAt) - Date.parse(wipe.expiresAt) < 0, true, "deadline before expiry");
    // Before the deadline: nothing happens.
    assert.equal((await fetchInbox(await device(), new MemoryOutput())).revoked, 0);
    assert.equal(await relayRevoked(volunteer.pseudonym), false);
    const before = (await listVolunteers(await device())).find((v) => v.pseudonym === volunteer.pseudonym);
    assert.equal(before?.wipeDeadline, wipe.revokeAt);
    // Two hours later, on this device's clock.
    const summary = await fetchInbox(await device(2 * HOUR), new MemoryOutput());
    assert.equal(summary.revoked, 1);
    assert.equal(await relayRevoked(volunteer.pseudonym), true);
    const after = (await listVolunteers(await device(2 * HOUR))).find((v) => v.pseudonym === volunteer.pseudonym);
    assert.equal(after?.wipe, "requested");
    assert.equal(after?.revoked, true);
    assert.equal(after?.silent, false, "a revoked volunteer is not reported silent");
  });

  it("records check-ins and flags a volunteer silent when nothing arrived within the interval", async () => {
    const volunteer = await enrolled();
    await volunteer.status("0", "", "checkin");
    const output = new MemoryOutput();
    await fetchInbox(await device(), output);
    assert.equal(output.reports.filter((r) => r.kind === "checkin").length, 1);
    const now = (await listVolunteers(await device())).find((v) => v.pseudonym === volunteer.pseudonym);
    assert.equal(now?.silent, false);
    assert.ok(now?.lastCheckin !== null && now?.lastCheckin !== undefined);
    assert.equal(now?.counts.checkin, 1);
    // 45 minutes later nothing else has arrived: silent with the default 30 min, not with 1 h.
    const later = await device(45 * 60 * 1000);
    const silent = (await listVolunteers(later)).find((v) => v.pseudonym === volunteer.pseudonym);
    assert.equal(silent?.silent, true);
    const patient = (await listVolunteers(later, { silentAfterMs: HOUR })).find(
      (v) => v.pseudonym === volunteer.pseudonym,
    );
    assert.equal(patient?.silent, false);
  });
});
