// Issue 5, coordinator side: the capsule holds the real signing key until the duress report is
// accepted, so a report received after the duress one may come from whoever holds the phone. Every
// such report is still written, marked `afterDuress: true`. Real relay process, real HTTP.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayProcess } from "../testing/relay-process.js";
import type { CoordinatorDevice } from "./device.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { TestVolunteer } from "./node-test-volunteer.js";
import { MemoryOutput } from "./output.js";
import { startCoordinatorOnRelay } from "./test-coordinator-on-relay.js";

const PASSPHRASE = "after duress passphrase";

describe("reports after a duress report (real relay process)", () => {
  let relay: RelayProcess;
  let device: CoordinatorDevice;
  let campaignId: string;

  before(async () => {
    ({ relay, device, campaignId } = await startCoordinatorOnRelay(PASSPHRASE));
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  it("every report the relay received at or after the duress report is written and marked afterDuress, across fetches", async () => {
    const [invite] = await mintInvites(device, { count: 1 });
    const volunteer = await TestVolunteer.enroll(invite?.code ?? "", campaignId);
    const other = await TestVolunteer.enroll((await mintInvites(device, { count: 1 }))[0]?.code ?? "", campaignId);
    await volunteer.status("3", "before");
    const before = new MemoryOutput();
    await fetchInbox(device, before);
    assert.deepEqual(
      before.reports.map((r) => [r.kind, r.afterDuress ?? false]),
      [
        ["enrolled", false],
        ["enrolled", false],
        ["status", false],
      ],
    );

    await volunteer.status("0", "", "duress");
    await volunteer.status("0", "", "checkin");
    await other.status("0", "", "checkin");
    const first = new MemoryOutput();
    await fetchInbox(device, first);
    assert.deepEqual(
      first.reports.map((r) => [r.volunteer === volunteer.pseudonym, r.kind, r.afterDuress ?? false]),
      [
        [true, "duress", false],
        [true, "checkin", true],
        [false, "checkin", false],
      ],
    );

    // A later fetch still knows: the duress report's receipt time is in the volunteer registry.
    await volunteer.status("4", "all calm now");
    const second = new MemoryOutput();
    await fetchInbox(device, second);
    assert.deepEqual(
      second.reports.map((r) => [r.kind, r.afterDuress ?? false]),
      [["status", true]],
    );
  });
});
