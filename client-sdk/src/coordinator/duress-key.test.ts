// Issue 5, the duress key D: every volunteer enrolls a second Ed25519 key beside its signing key.
// The relay opens that volunteer's session with either key; coordinators take whatever D signs as
// that volunteer's, UNDER DURESS (a `duress` line keeping the signed kind, volunteer flagged), and
// never as anyone else's.
// Real relay process, real HTTP.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  decodeInvite,
  generateDeviceKeys,
  generateSigningKeyPair,
  inviteRedeemToken,
  signEnrollment,
  signEnrollmentDuress,
  toBase64url,
} from "@testigo/protocol";
import type { RelayProcess } from "../testing/relay-process.js";
import { RelayRefused } from "../transport/errors.js";
import { RelayClient } from "../transport/relay-client.js";
import type { CoordinatorDevice } from "./device.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { TestVolunteer } from "./node-test-volunteer.js";
import { MemoryOutput, QUARANTINE_REASON } from "./output.js";
import { startCoordinatorOnRelay } from "./test-coordinator-on-relay.js";
import { listVolunteers } from "./volunteers.js";

const PASSPHRASE = "duress key passphrase";

describe("the duress key (real relay process)", () => {
  let relay: RelayProcess;
  let device: CoordinatorDevice;
  let campaignId: string;
  const invite = async () => (await mintInvites(device, { count: 1 }))[0]?.code ?? "";

  before(async () => {
    ({ relay, device, campaignId } = await startCoordinatorOnRelay(PASSPHRASE));
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  it("whatever D signs (status, checkin) is the volunteer's, written as a duress line with signedKind; the volunteer is flagged duress", async () => {
    const a = await TestVolunteer.enroll(await invite(), campaignId);
    await a.status("1", "before");
    const first = new MemoryOutput();
    await fetchInbox(device, first);
    assert.deepEqual(
      first.reports.map((r) => [r.kind, r.afterDuress ?? false]),
      [
        ["enrolled", false],
        ["status", false],
      ],
    );

    // The decoy: a session opened with D under the real pseudonym, reports signed by D.
    const decoy = a.duressClient();
    const sealedStatus = await a.seal(a.message("status", "2", "all calm"), a.duressSigner);
    await decoy.submitEnvelope(sealedStatus);
    // What a duress unlock sends: a check-in signed by D (a coordinator sees `duress`).
    await decoy.submitEnvelope(await a.seal(a.message("checkin", "0", ""), a.duressSigner));
    // What older devices send: a report of kind `duress`, still accepted and flagged.
    const sealedDuress = await a.seal(a.message("duress", "0", ""), a.duressSigner);
    await decoy.submitEnvelope(sealedDuress);
    const second = new MemoryOutput();
    await fetchInbox(device, second);
    assert.deepEqual(
      second.reports.map((r) => [r.volunteer, r.kind, r.signedKind ?? null, r.afterDuress ?? false]),
      [
        [a.pseudonym, "duress", "status", false],
        [a.pseudonym, "duress", "checkin", false],
        [a.pseudonym, "duress", null, false],
      ],
    );
    // A D-signed status keeps its fields.
    assert.deepEqual(
      second.reports.map((r) => [r.table, r.text]),
      [
        ["2", "all calm"],
        ["0", ""],
        ["0", ""],
      ],
    );
    const view = (await listVolunteers(device)).find((v) => v.pseudonym === a.pseudonym);
    assert.equal(view?.duress, true);
    assert.equal(view?.counts.duress, 3);

    // The real key afterwards: flagged too (received after the first duress-signed report); a
    // check-in the real key signs stays a check-in.
    await a.status("3", "later");
    await a.status("0", "", "checkin");
    const third = new MemoryOutput();
    await fetchInbox(device, third);
    assert.deepEqual(
      third.reports.map((r) => [r.kind, r.signedKind ?? null, r.afterDuress ?? false]),
      [
        ["status", null, true],
        ["checkin", null, true],
      ],
    );
  });

  it("D cannot open another volunteer's session, nor sign as another volunteer", async () => {
    const a = await TestVolunteer.enroll(await invite(), campaignId);
    const b = await TestVolunteer.enroll(await invite(), campaignId);
    await fetchInbox(device, new MemoryOutput());
    // The relay: a session for b's pseudonym signed with a's D is refused.
    await assert.rejects(a.duressClient(b.pseudonym).readMailbox(), (error: unknown) => {
      assert.ok(error instanceof RelayRefused);
      assert.equal(error.code, "AUTH_FAILED");
      return true;
    });
    // The coordinators: an envelope signed by a's D, submitted through b's session, is a's.
    await b.client.submitEnvelope(await a.seal(a.message("status", "4", "whose?"), a.duressSigner));
    const out = new MemoryOutput();
    await fetchInbox(device, out);
    assert.deepEqual(
      out.reports.map((r) => [r.volunteer, r.kind, r.signedKind ?? null]),
      [[a.pseudonym, "duress", "status"]],
    );
    const views = await listVolunteers(device);
    assert.equal(views.find((v) => v.pseudonym === b.pseudonym)?.duress, false);
  });

  it("a D-signed status or acta, the first thing a decoy sends, is a duress line; the acta keeps its photos", async () => {
    const a = await TestVolunteer.enroll(await invite(), campaignId);
    await fetchInbox(device, new MemoryOutput());
    // `testigo volunteer report` under the duress PIN (check-ins off): a status signed by D, no check-in.
    await a.duressClient().submitEnvelope(await a.seal(a.message("status", "9", "all calm"), a.duressSigner));
    const photo = new Uint8Array(3000).fill(7);
    await a.acta("10", [photo], { signer: a.duressSigner });
    const out = new MemoryOutput();
    await fetchInbox(device, out);
    assert.deepEqual(
      out.reports.map((r) => [r.volunteer, r.kind, r.signedKind ?? null, r.table, r.afterDuress ?? false]),
      [
        [a.pseudonym, "duress", "status", "9", false],
        [a.pseudonym, "duress", "acta", "10", false],
      ],
    );
    const acta = out.reports[1];
    assert.deepEqual(acta?.tallies, {});
    assert.deepEqual(
      acta?.photos?.map((p) => [p.status, p.size]),
      [["ok", photo.length]],
    );
    const view = (await listVolunteers(device)).find((v) => v.pseudonym === a.pseudonym);
    assert.equal(view?.duress, true);
    assert.equal(view?.counts.duress, 2);
  });

  it("an enrollment that announces an enrolled key as its duress key is refused as an attack", async () => {
    const victim = await TestVolunteer.enroll(await invite(), campaignId);
    await fetchInbox(device, new MemoryOutput());
    const before = (await device.counters()).security ?? 0;
    // Even with D's valid proof (an image of the victim's decoy holds D's private key).
    const thief = await TestVolunteer.enroll(await invite(), campaignId, { announceDuressKey: victim.duress });
    const out = new MemoryOutput();
    await fetchInbox(device, out);
    assert.deepEqual(out.reports, []);
    assert.deepEqual(
      [...out.quarantine.values()].map((q) => [q.reason, q.pseudonym]),
      [[QUARANTINE_REASON.duressKeyTaken, thief.pseudonym]],
    );
    assert.equal((await device.counters()).security, before + 1);
    // The victim's own reports are still the victim's, and not flagged.
    await victim.status("5", "still me");
    const next = new MemoryOutput();
    await fetchInbox(device, next);
    assert.deepEqual(
      next.reports.map((r) => [r.volunteer, r.afterDuress ?? false]),
      [[victim.pseudonym, false]],
    );
  });

  it("D's reports before the volunteer's enrolled report was seen are refused like any unknown signer", async () => {
    const early = await TestVolunteer.enroll(await invite(), campaignId, { sendEnrolled: false });
    await early.duressClient().submitEnvelope(await early.seal(early.message("checkin", "0", ""), early.duressSigner));
    await early.sendEnrolled();
    await early.duressClient().submitEnvelope(await early.seal(early.message("checkin", "0", ""), early.duressSigner));
    // A key nobody announced signs: an unknown signer as well.
    const stranger = { signing: generateSigningKeyPair(), encryption: early.keys.encryption };
    await early.client.submitEnvelope(await early.seal(early.message("status", "6", ""), stranger));
    const out = new MemoryOutput();
    await fetchInbox(device, out);
    assert.deepEqual(
      out.reports.map((r) => [r.kind, r.signedKind ?? null, r.afterDuress ?? false]),
      [
        ["enrolled", null, false],
        ["duress", "checkin", false],
      ],
    );
    assert.deepEqual(
      [...out.quarantine.values()].map((q) => q.reason),
      [QUARANTINE_REASON.unknownSender, QUARANTINE_REASON.unknownSender],
    );
  });

  it("an enrollment with a small-order or invalid duress key is refused with 400 and writes nothing", async () => {
    const code = await invite();
    const { relayUrl, secret } = decodeInvite(code);
    const anonymous = new RelayClient(relayUrl);
    const token = inviteRedeemToken(secret);
    const keys = generateDeviceKeys();
    const smallOrder = new Uint8Array(32);
    smallOrder[0] = 1; // the identity point
    const notOnCurve = new Uint8Array(32).fill(0xff);
    const listed = (await device.client.listVolunteers()).volunteers.length;
    for (const bad of [smallOrder, notOnCurve, keys.signing.publicKey]) {
      await assert.rejects(
        anonymous.enroll(campaignId, {
          redeemToken: toBase64url(token),
          signingKey: toBase64url(keys.signing.publicKey),
          encryptionKey: toBase64url(keys.encryption.publicKey),
          duressKey: toBase64url(bad),
          signature: signEnrollment(
            token,
            keys.signing.publicKey,
            keys.encryption.publicKey,
            keys.signing.privateKey,
            bad,
          ),
          duressSignature: signEnrollmentDuress(
            token,
            keys.signing.publicKey,
            keys.encryption.publicKey,
            bad,
            keys.signing.privateKey,
          ),
        } as Parameters<RelayClient["enroll"]>[1]),
        (error: unknown) => {
          assert.ok(error instanceof RelayRefused);
          assert.equal(error.status, 400);
          assert.equal(error.code, "MALFORMED_REQUEST");
          return true;
        },
      );
    }
    assert.equal((await device.client.listVolunteers()).volunteers.length, listed);
    // The invite was not spent: the same invite enrolls with a valid duress key.
    const good = await TestVolunteer.enroll(code, campaignId);
    assert.equal((await device.client.listVolunteers()).volunteers.length, listed + 1);
    assert.match(good.pseudonym, /^v-/);
  });
});
