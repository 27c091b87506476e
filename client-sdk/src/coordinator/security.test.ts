// Regression tests named after the review's findings: H1 "one invite, unlimited volunteers" and
// H2 "one crafted acta stops coordinator intake for good". Real relay process, real HTTP.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  decodeInvite,
  type InnerMessage,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  randomBytes,
  toBase64url,
} from "@testigo/protocol";
import type { RelayProcess } from "../testing/relay-process.js";
import type { CoordinatorDevice } from "./device.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { TestVolunteer } from "./node-test-volunteer.js";
import { type FetchOutput, MemoryOutput, QUARANTINE_REASON } from "./output.js";
import { inviteRecord, RECORD } from "./state.js";
import { startCoordinatorOnRelay } from "./test-coordinator-on-relay.js";
import { listVolunteers } from "./volunteers.js";

const PASSPHRASE = "security regression passphrase";

describe("coordinator security regressions (real relay process)", () => {
  let relay: RelayProcess;
  let device: CoordinatorDevice;
  let campaignId: string;

  before(async () => {
    ({ relay, device, campaignId } = await startCoordinatorOnRelay(PASSPHRASE));
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  const enroll = async (label?: string): Promise<TestVolunteer> => {
    const [invite] = await mintInvites(device, { count: 1, ...(label === undefined ? {} : { label }) });
    return TestVolunteer.enroll(invite?.code ?? "", campaignId);
  };

  it("H1 one invite, unlimited volunteers: later keys enrolling with a used invite are refused and raised", async () => {
    const holder = await enroll("centre 1");
    const forged: { messageId: string; reportId: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const { keys, messageId } = await holder.forgeEnrollment();
      // A forged acta signed by the new identity, through the holder's session.
      const acta: InnerMessage = { kind: "acta", ...holder.common(`99.${i}`, ""), tallies: { GOV: 999 }, photos: [] };
      await holder.submit(acta, keys);
      forged.push({ messageId, reportId: acta.messageId });
    }
    const genuine = await holder.status("1", "the real one");

    const output = new MemoryOutput();
    const summary = await fetchInbox(device, output);
    assert.deepEqual(
      output.reports.map((r) => [r.kind, r.volunteer]),
      [
        ["enrolled", holder.pseudonym],
        ["status", holder.pseudonym],
      ],
    );
    assert.equal(output.reports[1]?.id, genuine);
    for (const f of forged) {
      const refused = output.quarantine.get(f.messageId);
      assert.equal(refused?.reason, "invite already used by another device");
      assert.equal(refused?.inviteHolder, holder.pseudonym);
      assert.equal(output.quarantine.get(f.reportId)?.reason, QUARANTINE_REASON.unknownSender);
    }
    assert.equal(summary.security, 3);
    assert.equal((await device.counters()).security, 3);
    const views = await listVolunteers(device);
    assert.equal(views.find((v) => v.pseudonym === holder.pseudonym)?.security, 3);
    assert.ok(!views.some((v) => v.pseudonym === output.quarantine.get(forged[0]?.messageId ?? "")?.pseudonym));
  });

  it("H1: a copied, unused invite cannot enroll a key the relay never enrolled; its rightful volunteer still can", async () => {
    const insider = await enroll();
    await fetchInbox(device, new MemoryOutput());
    const [spare] = await mintInvites(device, { count: 1 });
    const stolen = decodeInvite(spare?.code ?? "").secret;
    const { messageId } = await insider.forgeEnrollment(stolen);
    const output = new MemoryOutput();
    const first = await fetchInbox(device, output);
    assert.equal(output.quarantine.get(messageId)?.reason, QUARANTINE_REASON.notEnrolledAtRelay);
    assert.equal(first.security, 1);
    // The forgery did not take the invite: the person it was meant for enrolls normally.
    const rightful = await TestVolunteer.enroll(spare?.code ?? "", campaignId);
    await rightful.status("3", "hello");
    const second = await fetchInbox(device, output);
    assert.equal(second.quarantined, 0);
    assert.deepEqual(
      output.reports.filter((r) => r.volunteer === rightful.pseudonym).map((r) => r.kind),
      ["enrolled", "status"],
    );
  });

  it("H1: an invite past its expiry (known to the device that minted it) does not enroll", async () => {
    const [invite] = await mintInvites(device, { count: 1 });
    const secret = decodeInvite(invite?.code ?? "").secret;
    const storedHash = inviteStoredHashBase64url(inviteRedeemToken(secret));
    const volunteer = await TestVolunteer.enroll(invite?.code ?? "", campaignId);
    // As if the relay had enrolled it after the expiry this device set (a relay that did not
    // enforce it): the device's own record of the invite decides.
    const record = await device.store.getJson(RECORD.invite(storedHash), (v) => inviteRecord.parse(v));
    assert.ok(record);
    await device.store.putJson(RECORD.invite(storedHash), { ...record, expiresAt: Date.now() - 3 * 60 * 60 * 1000 });
    const output = new MemoryOutput();
    const summary = await fetchInbox(device, output);
    assert.equal(summary.security, 1);
    assert.equal(output.reports.filter((r) => r.volunteer === volunteer.pseudonym).length, 0);
    assert.ok(
      [...output.quarantine.values()].some(
        (q) => q.reason === QUARANTINE_REASON.inviteExpired && q.pseudonym === volunteer.pseudonym,
      ),
    );
  });

  it("H1: reports signed after a wipe-ack, or by a key revoked at the relay, are quarantined as 'volunteer revoked'", async () => {
    const wiped = await enroll();
    const revoked = await enroll();
    await fetchInbox(device, new MemoryOutput());
    const before = await wiped.status("5", "before the wipe");
    const ack = await wiped.wipeAck(Date.now());
    const cloned = await wiped.status("5", "from an image of the phone taken before the wipe");
    const pending = await revoked.status("6", "sent just before revocation");
    await device.client.revokeVolunteer(revoked.pseudonym);
    const views = await listVolunteers(device);
    assert.equal(views.find((v) => v.pseudonym === revoked.pseudonym)?.revoked, true);

    const output = new MemoryOutput();
    await fetchInbox(device, output);
    assert.deepEqual(
      output.reports.map((r) => r.id),
      [before, ack],
    );
    assert.equal(output.quarantine.get(cloned)?.reason, "volunteer revoked");
    assert.equal(output.quarantine.get(pending)?.reason, "volunteer revoked");
    const after = await listVolunteers(device, { relay: false });
    assert.equal(after.find((v) => v.pseudonym === wiped.pseudonym)?.revoked, true);
    assert.equal(after.find((v) => v.pseudonym === wiped.pseudonym)?.wipe, "acknowledged");
  });

  it("H2 one crafted acta stops coordinator intake for good: the acta is quarantined, the next report written", async () => {
    const volunteer = await enroll();
    const b = (n: number) => toBase64url(randomBytes(n));
    // size 1 needs 1 chunk, not 2: a reference no photo can match (the review's PoC).
    const photoId = b(16);
    const poisoned = {
      kind: "acta",
      ...volunteer.common("7", ""),
      tallies: {},
      photos: [{ photoId, key: b(32), header: b(24), sha256: b(32), size: 1, chunkCount: 2 }],
    };
    await volunteer.request(() => volunteer.client.createPhoto(photoId, 2));
    for (const index of [0, 1]) {
      const chunk = randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES);
      await volunteer.request(() => volunteer.client.putChunk(photoId, index, chunk));
    }
    await volunteer.submitUnchecked(poisoned);
    const next = await volunteer.status("7", "after the poisoned acta");

    const output = new MemoryOutput();
    const summary = await fetchInbox(device, output);
    assert.ok(output.reports.some((r) => r.id === next));
    assert.ok(!output.reports.some((r) => r.id === poisoned.messageId));
    // Refused by the protocol's report schema where it checks photo references (undecryptable:
    // every open failure looks alike), else by fetch itself (unprocessable): quarantined either way.
    assert.ok(
      [QUARANTINE_REASON.unprocessable, QUARANTINE_REASON.undecryptable].includes(
        output.quarantine.get(poisoned.messageId)?.reason as never,
      ),
    );
    assert.equal(summary.security, 0);
    // Acked: later fetches are not blocked and do not see it again.
    const later = await volunteer.status("7", "later");
    const again = await fetchInbox(device, output);
    assert.equal(again.quarantined, 0);
    assert.ok(output.reports.some((r) => r.id === later));
  });

  it("H2: a failure of the OUT folder itself still stops the fetch, and nothing unwritten is acked", async () => {
    const volunteer = await enroll();
    await fetchInbox(device, new MemoryOutput());
    const id = await volunteer.status("8", "survives a full disk");
    const good = new MemoryOutput();
    const full: FetchOutput = {
      writtenIds: () => good.writtenIds(),
      findPhoto: (photoId, sha256) => good.findPhoto(photoId, sha256),
      writePhoto: () => Promise.reject(Object.assign(new Error("no space left on device"), { code: "ENOSPC" })),
      appendReports: () => Promise.reject(Object.assign(new Error("no space left on device"), { code: "ENOSPC" })),
      writeQuarantine: (entry) => good.writeQuarantine(entry),
    };
    await assert.rejects(fetchInbox(device, full), /no space left/);
    assert.equal(good.quarantine.size, 0, "nothing quarantined for a local failure");
    await fetchInbox(device, good);
    assert.deepEqual(
      good.reports.map((r) => r.id),
      [id],
    );
  });
});
