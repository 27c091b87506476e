// Issue 5 end to end through the `testigo` command and a real relay process: the four ways a
// volunteer device is erased — the duress PIN, a remote wipe, the panic command, the wrong-PIN
// limit. Each phone first holds real data: a report the coordinators received, and a report and an
// acta (with a photo) still queued in its outbox. After each path the device folder is checked
// (erasure.ts): the real PIN opens nothing, the old data key decrypts no file, no file holds a
// key, the invite, a PIN, a report marker or photo bytes in any encoding — and after duress, the
// decoy opens and holds none of them either.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CONTROL_MESSAGE_BYTES, initSodium } from "@testigo/protocol";
import { RelayClient } from "../../../client-sdk/dist/transport/relay-client.js";
import {
  type CoordinatorDevice,
  fetchAll,
  initCoordinator,
  invite,
  marker,
  photoFile,
  readReports,
} from "../helpers/campaign.js";
import { testigo, testigoOk } from "../helpers/cli.js";
import { syntheticPhoto } from "../helpers/photos.js";
import { type LoggedRelay, startLoggedRelay } from "../helpers/relay.js";
import { folderFiles, snapshotDevice } from "./device-state.js";
import { assertErased, assertNeedlesInPlaintext, type RealSecrets, recordSecrets } from "./erasure.js";
import {
  bytes,
  enrollVolunteer,
  identityOf,
  openCoordinator,
  secretFile,
  type Volunteer5,
  volunteerCli,
} from "./fixture.js";

/** Exit code of a wrong PIN (docs/cli-volunteer.md). */
const EXIT_WRONG_SECRET = 5;

/** The relay refuses a wiped or revoked identity's credential (a copy of its key, as a thief would hold). */
async function assertCredentialRefused(
  relayUrl: string,
  identity: Awaited<ReturnType<typeof identityOf>>,
): Promise<void> {
  const stolen = new RelayClient(relayUrl, {
    campaignId: identity.campaignId,
    role: "volunteer",
    principal: identity.pseudonym,
    signingPrivateKey: bytes(identity.signing.privateKey),
  });
  await assert.rejects(stolen.readMailbox(), (error: { code?: string }) => {
    assert.match(String(error.code), /^(REVOKED|AUTH_FAILED|FORBIDDEN)$/);
    return true;
  });
}
/** Needles the real profile holds before the erase: the queued (unsent) report and acta markers, its keys. */
const CONTROLS = [
  /^report marker #[234]$/,
  /real signing seed/,
  /real encryption private key/,
  /real pseudonym/,
  /invite proof/,
];

describe("erasing a volunteer device: duress PIN, remote wipe, panic, wrong-PIN limit", () => {
  let work: string;
  let relay: LoggedRelay;
  let coordinator: CoordinatorDevice;
  let codes: string[];
  let out: string;

  before(async () => {
    await initSodium();
    work = mkdtempSync(join(tmpdir(), "testigo-issue5-erase-"));
    relay = await startLoggedRelay();
    coordinator = await initCoordinator(work, "coord", relay.url, relay.token);
    codes = await invite(coordinator, 8);
    out = join(work, "out");
  });

  after(async () => {
    await relay?.remove();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  const coordinatorCli = (command: string, ...args: string[]) =>
    testigoOk([
      "coordinator",
      command,
      "--dir",
      coordinator.dir,
      "--passphrase-file",
      coordinator.passphraseFile,
      ...args,
    ]);

  /**
   * Enrolls a phone, sends one status report, then — with the relay stopped — queues a report
   * and an acta with a photo (exit 3: kept in the outbox). Records the secrets to look for.
   */
  async function loadedPhone(
    name: string,
    code: string,
    enrollFlags: { duress?: boolean; extra?: readonly string[] } = {},
  ): Promise<{ phone: Volunteer5; real: RealSecrets; markers: string[] }> {
    const phone = await enrollVolunteer(work, name, code, enrollFlags);
    const markers = [marker(), marker(), marker(), marker(), marker()];
    const sent = await volunteerCli("report", phone, phone.pinFile, [
      "--table",
      markers[0] as string,
      "--text",
      markers[1] as string,
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    const photo = syntheticPhoto(60_000);
    const file = photoFile(join(work, "camera"), `${name}.jpg`, photo.bytes, photo.exifMarker);
    markers.push(photo.exifMarker);
    await relay.stop();
    try {
      const queued = await volunteerCli("report", phone, phone.pinFile, [
        "--table",
        markers[2] as string,
        "--text",
        markers[3] as string,
        "--timeout",
        "0",
      ]);
      assert.equal(queued.code, 3, `a report with the relay down is kept (exit 3): ${queued.stderr}`);
      const acta = await volunteerCli("acta", phone, phone.pinFile, [
        "--table",
        markers[4] as string,
        "--timeout",
        "0",
        file.path,
      ]);
      assert.equal(acta.code, 3, `an acta with the relay down is kept (exit 3): ${acta.stderr}`);
    } finally {
      await relay.restart();
    }
    const real = await recordSecrets(phone.dir, {
      pin: phone.pin,
      ...(phone.duressPin === undefined ? {} : { duressPin: phone.duressPin }),
      inviteCode: code,
      markers,
      photos: [photo.bytes],
    });
    // The queued report's markers are in the real profile's plaintext (the needles can find things).
    assertNeedlesInPlaintext(real, CONTROLS);
    return { phone, real, markers };
  }

  it("duress PIN: same output as a real unlock, a duress alert from the real pseudonym, real profile erased, decoy opens", async () => {
    const { phone, real } = await loadedPhone("duress-phone", codes[0] as string, { duress: true });
    const witness = await enrollVolunteer(work, "witness-phone", codes[1] as string, { duress: true });

    const normal = await volunteerCli("unlock", witness, witness.pinFile);
    const duress = await volunteerCli("unlock", phone, phone.duressPinFile as string);
    assert.deepEqual(
      { code: duress.code, stdout: duress.stdout, stderr: duress.stderr },
      { code: normal.code, stdout: normal.stdout, stderr: normal.stderr },
      "the duress PIN prints and exits exactly like the PIN",
    );
    assert.deepEqual([normal.code, normal.stdout], [0, "unlocked\n"]);

    await fetchAll(coordinator, out);
    // The decoy queued no special report: in place of the real profile's queued report and acta
    // (erased) it sent cover items of the same shape, signed with the duress key (no check-in: a
    // short report was queued, as the PIN's unlock would have sent it), written as `duress` (the
    // kind they were signed as kept in `signedKind`) and flagged `cover`.
    const duressLines = readReports(out).filter((r) => r.kind === "duress");
    assert.deepEqual(
      duressLines.map((r) => [r.volunteer, r.signedKind, r.cover]),
      [
        [real.pseudonym, "status", true],
        [real.pseudonym, "acta", true],
      ],
      "duress lines from the real pseudonym: the cover items",
    );
    const listed = JSON.parse((await coordinatorCli("volunteers", "--json")).stdout) as {
      pseudonym: string;
      duress: boolean;
    }[];
    assert.equal(listed.find((v) => v.pseudonym === real.pseudonym)?.duress, true, "flagged in coordinator volunteers");
    assert.equal(
      listed.find((v) => v.pseudonym === witness.pseudonym)?.duress,
      false,
      "the other phone is not flagged",
    );
    const table = (await coordinatorCli("volunteers")).stdout;
    assert.match(
      table.split("\n").find((line) => line.startsWith(real.pseudonym)) ?? "",
      /DURESS/,
      "the table shows DURESS",
    );

    const decoy = await assertErased(phone.dir, real, { duressPin: phone.duressPin as string });
    assert.ok(decoy !== undefined);
    // The decoy keeps working with the duress PIN, and the real PIN now fails like a wrong one.
    const status = await volunteerCli("status", phone, phone.duressPinFile as string, ["--json"]);
    assert.equal(status.code, 0, status.stderr);
    // The decoy is the same pseudonym, signing with the duress key: it is enrolled at the relay.
    assert.equal((JSON.parse(status.stdout) as { pseudonym: string }).pseudonym, real.pseudonym);
    const again = await volunteerCli("unlock", phone, phone.pinFile);
    assert.equal(again.code, EXIT_WRONG_SECRET, `the real PIN after duress: ${again.stdout} ${again.stderr}`);
    // A second duress unlock erases nothing more; its check-in, signed with the duress key again,
    // is another duress line of the same volunteer (not a cover).
    assert.equal((await volunteerCli("unlock", phone, phone.duressPinFile as string)).code, 0);
    await fetchAll(coordinator, out);
    assert.deepEqual(
      readReports(out)
        .filter((r) => r.kind === "duress")
        .map((r) => [r.volunteer, r.signedKind, r.cover]),
      [
        [real.pseudonym, "status", true],
        [real.pseudonym, "acta", true],
        [real.pseudonym, "checkin", undefined],
      ],
      "each duress-signed check-in is a duress line",
    );

    // Coerced use of the decoy works through the relay like a real phone (same output as the
    // other phone's real profile) and reaches the coordinators as a duress line (signed as status).
    const decoyMarker = marker();
    const forced = await volunteerCli("report", phone, phone.duressPinFile as string, [
      "--table",
      "7",
      "--text",
      decoyMarker,
    ]);
    const honest = await volunteerCli("report", witness, witness.pinFile, ["--table", "7", "--text", marker()]);
    assert.deepEqual(
      { code: forced.code, stdout: forced.stdout, stderr: forced.stderr },
      { code: honest.code, stdout: honest.stdout, stderr: honest.stderr },
      "a forced report on the decoy prints and exits like one on a real profile",
    );
    assert.equal(forced.code, 0, forced.stderr);
    const sync = await volunteerCli("sync", phone, phone.duressPinFile as string);
    assert.equal(sync.code, 0, `the decoy's sync: ${sync.stdout} ${sync.stderr}`);
    await fetchAll(coordinator, out);
    const decoyLine = readReports(out).find((r) => r.text === decoyMarker);
    assert.deepEqual(
      [decoyLine?.volunteer, decoyLine?.kind, decoyLine?.signedKind],
      [real.pseudonym, "duress", "status"],
      "the decoy's report is the volunteer's, written as a duress line",
    );
    await assertErased(phone.dir, real, { duressPin: phone.duressPin as string });
  });

  it("remote wipe: coordinator wipe → volunteer sync → wipe-ack, device erased, credential revoked at the relay", async () => {
    const { phone, real } = await loadedPhone("wiped-phone", codes[2] as string);
    const identity = await identityOf(phone.dir, phone.pin);
    await fetchAll(coordinator, out);
    const wipe = JSON.parse((await coordinatorCli("wipe", phone.pseudonym, "--json")).stdout) as { ok: boolean };
    assert.equal(wipe.ok, true);

    const sync = await volunteerCli("sync", phone, phone.pinFile);
    assert.equal(sync.code, 0, `sync that runs the wipe: ${sync.stdout} ${sync.stderr}`);
    await assertErased(phone.dir, real);

    await fetchAll(coordinator, out);
    const acks = readReports(out).filter((r) => r.kind === "wipe-ack" && r.volunteer === real.pseudonym);
    assert.equal(acks.length, 1, "the coordinator received the wipe-ack");
    const listed = JSON.parse((await coordinatorCli("volunteers", "--json")).stdout) as {
      pseudonym: string;
      wipe: string;
      revoked: boolean | null;
    }[];
    const view = listed.find((v) => v.pseudonym === real.pseudonym);
    assert.equal(view?.wipe, "acknowledged");
    assert.equal(view?.revoked, true, "revoked (after the ack)");
    // The relay's own list (not this device's registry) says revoked.
    const relayList = await (await openCoordinator(coordinator)).client.listVolunteers();
    assert.equal(relayList.volunteers.find((v) => v.pseudonym === real.pseudonym)?.revoked, true);

    // The relay refuses the erased identity's credential (a copy of its key, as a thief would hold).
    await assertCredentialRefused(relay.url, identity);
  });

  it("panic: erases at once without a PIN", async () => {
    const { phone, real } = await loadedPhone("panic-phone", codes[3] as string);
    const run = await testigo(["volunteer", "panic", "--dir", phone.dir]);
    assert.deepEqual([run.code, run.stdout], [0, "erased\n"], run.stderr);
    await assertErased(phone.dir, real);
    const unlock = await volunteerCli("unlock", phone, phone.pinFile);
    assert.equal(unlock.code, EXIT_WRONG_SECRET, "after panic the real PIN fails like a wrong one");
  });

  it("wrong-PIN limit: the device erases itself at the limit set at enrollment", async () => {
    const limit = 3;
    const { phone, real } = await loadedPhone("limit-phone", codes[4] as string, {
      extra: ["--max-failed-unlocks", String(limit)],
    });
    const wrongFile = secretFile(work, "wrong.pin", "000000000");
    for (let attempt = 1; attempt < limit; attempt++) {
      const wrong = await volunteerCli("unlock", phone, wrongFile);
      assert.equal(wrong.code, EXIT_WRONG_SECRET);
    }
    // One attempt before the limit, the device is intact (opened here without touching its counter).
    const intact = await snapshotDevice(folderFiles(phone.dir), phone.pin);
    assert.ok((intact.profile?.records.size ?? 0) > 0, `${limit - 1} wrong PINs: the real PIN still opens the device`);
    assert.equal(intact.failedUnlocks, limit - 1, "the device counted the failed unlocks");
    const last = await volunteerCli("unlock", phone, wrongFile);
    assert.equal(last.code, EXIT_WRONG_SECRET);
    await assertErased(phone.dir, real);
  });

  it("wipe deadline: a phone that never syncs is revoked at the relay by the first fetch after --revoke-after; silent phones are flagged", async () => {
    const silentPhone = await enrollVolunteer(work, "deadline-phone", codes[5] as string);
    const quietPhone = await enrollVolunteer(work, "quiet-phone", codes[6] as string);
    const identity = await identityOf(silentPhone.dir, silentPhone.pin);
    await fetchAll(coordinator, out);
    const wipe = JSON.parse(
      (await coordinatorCli("wipe", silentPhone.pseudonym, "--revoke-after", "1s", "--json")).stdout,
    ) as { ok: boolean; revokeAt: string };
    assert.equal(wipe.ok, true);
    // Wait past the deadline (and 2 s past the quiet phone's enrollment report).
    const wait = Math.max(Date.parse(wipe.revokeAt) - Date.now(), 0) + 2_000;
    await new Promise((resolve) => setTimeout(resolve, wait));
    await fetchAll(coordinator, out);

    const views = (silentAfter: string) =>
      coordinatorCli("volunteers", "--silent-after", silentAfter, "--json").then(
        (run) => JSON.parse(run.stdout) as { pseudonym: string; revoked: boolean | null; silent: boolean }[],
      );
    const strict = await views("1s");
    const revoked = strict.find((v) => v.pseudonym === silentPhone.pseudonym);
    assert.equal(revoked?.revoked, true, "revoked at the relay once the wipe deadline passed");
    assert.equal(revoked?.silent, false, "a revoked volunteer is never silent");
    assert.equal(strict.find((v) => v.pseudonym === quietPhone.pseudonym)?.silent, true, "silent past 1 s");
    const lenient = await views("30m");
    assert.equal(lenient.find((v) => v.pseudonym === quietPhone.pseudonym)?.silent, false, "not silent within 30 min");

    // Its credential is refused and its mailbox is gone.
    await assertCredentialRefused(relay.url, identity);
    const device = await openCoordinator(coordinator);
    await assert.rejects(
      device.client.putMailbox(silentPhone.pseudonym, new Uint8Array(CONTROL_MESSAGE_BYTES)),
      (error: { code?: string }) => {
        assert.equal(error.code, "NOT_FOUND");
        return true;
      },
    );
    const sync = await volunteerCli("sync", silentPhone, silentPhone.pinFile);
    assert.notEqual(sync.code, 0, "the revoked phone's sync is refused");
  });

  it("duress PIN with the relay down: erased at once, the alert goes out with the next sync as the real pseudonym", async () => {
    const { phone, real } = await loadedPhone("offline-duress-phone", codes[7] as string, { duress: true });
    await relay.stop();
    let normal: Awaited<ReturnType<typeof volunteerCli>>;
    let duress: Awaited<ReturnType<typeof volunteerCli>>;
    try {
      normal = await volunteerCli("unlock", phone, phone.pinFile, ["--timeout", "0"]);
      duress = await volunteerCli("unlock", phone, phone.duressPinFile as string, ["--timeout", "0"]);
      // Erased before anything reached the network.
      await assertErased(phone.dir, real, { duressPin: phone.duressPin as string });
    } finally {
      await relay.restart();
    }
    assert.deepEqual(
      { code: duress.code, stdout: duress.stdout, stderr: duress.stderr },
      { code: normal.code, stdout: normal.stdout, stderr: normal.stderr },
      "offline, the duress PIN prints and exits exactly like the PIN",
    );
    await fetchAll(coordinator, out);
    const early = readReports(out).filter((r) => r.kind === "duress" && r.volunteer === real.pseudonym);
    assert.equal(early.length, 0, "nothing could be sent while the relay was down");
    const sync = await volunteerCli("sync", phone, phone.duressPinFile as string);
    assert.equal(sync.code, 0, `the decoy's sync: ${sync.stdout} ${sync.stderr}`);
    await fetchAll(coordinator, out);
    assert.deepEqual(
      readReports(out)
        .filter((r) => r.kind === "duress" && r.volunteer === real.pseudonym)
        .map((r) => [r.signedKind, r.cover]),
      [
        ["status", true],
        ["acta", true],
      ],
      "the queued duress alert (the offline unlock's cover items) arrived, from the real pseudonym",
    );
    await assertErased(phone.dir, real, { duressPin: phone.duressPin as string });
  });
});
