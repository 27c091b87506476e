// `testigo volunteer …` as a person or a script runs it: the real binary in a child process,
// against a real relay child process.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { initSodium } from "@testigo/protocol";
import { type RelayProcess, startRelay } from "../../testing/relay-process.js";
import { type TestCoordinator, testCoordinator } from "../../volunteer/test-coordinator.js";

const BIN = fileURLToPath(new URL("../../../bin/testigo.js", import.meta.url));

describe("testigo volunteer (CLI)", () => {
  let relay: RelayProcess;
  let coordinator: TestCoordinator;
  let work: string;

  before(async () => {
    await initSodium();
    relay = await startRelay();
    coordinator = await testCoordinator(relay.url, relay.token);
    work = mkdtempSync(join(tmpdir(), "testigo-cli-volunteer-"));
    writeFileSync(join(work, "pin"), "481516\n");
    writeFileSync(join(work, "duress"), "234234\n");
    writeFileSync(join(work, "wrong"), "000000\n");
  });
  after(async () => {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  });

  function testigo(...args: string[]) {
    const run = spawnSync(process.execPath, [BIN, ...args], {
      encoding: "utf8",
      env: { ...process.env, TESTIGO_PIN: "" },
    });
    return { code: run.status, stdout: run.stdout, stderr: run.stderr };
  }

  it("enrolls, queues offline, syncs when the relay is back, reports status, checks the PIN", async () => {
    const dir = join(work, "phone");
    const pin = ["--pin-file", join(work, "pin")];
    const enrolled = testigo(
      "volunteer",
      "enroll",
      "--dir",
      dir,
      "--invite",
      await coordinator.invite(),
      ...pin,
      "--duress-pin-file",
      join(work, "duress"),
      "--json",
    );
    assert.equal(enrolled.code, 0, enrolled.stderr);
    const { pseudonym, sent } = JSON.parse(enrolled.stdout) as { pseudonym: string; sent: boolean };
    assert.match(pseudonym, /^v-[0-9A-Z]{16}$/);
    assert.equal(sent, true);

    await relay.stop();
    const offline = testigo(
      "volunteer",
      "report",
      "--dir",
      dir,
      "--table",
      "1401023.3",
      "--text",
      "witness blocked",
      ...pin,
      "--timeout",
      "0.3",
    );
    assert.equal(offline.code, 3);
    assert.match(
      offline.stderr,
      /relay unreachable at http:\/\/127\.0\.0\.1:\d+: the report is kept in the outbox and will be sent by `testigo volunteer sync`/,
    );
    const photo = join(work, "acta.jpg");
    writeFileSync(
      photo,
      new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff),
    );
    assert.equal(
      testigo("volunteer", "acta", "--dir", dir, "--table", "1401023.3", photo, ...pin, "--timeout", "0").code,
      3,
    );

    const queued = testigo("volunteer", "status", "--dir", dir, ...pin, "--json");
    assert.equal(queued.code, 0, queued.stderr);
    const status = JSON.parse(queued.stdout) as { pseudonym: string; outbox: { envelopes: number; photos: number } };
    assert.equal(status.pseudonym, pseudonym);
    assert.deepEqual([status.outbox.envelopes, status.outbox.photos], [2, 1]);

    await relay.restart();
    const sync = testigo("volunteer", "sync", "--dir", dir, ...pin, "--json");
    assert.equal(sync.code, 0, sync.stderr);
    assert.deepEqual((JSON.parse(sync.stdout) as { sent: unknown }).sent, { envelopes: 2, photos: 1, chunks: 4 });
    const { messages } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => m.kind),
      ["enrolled", "status", "acta"],
    );

    const wrong = testigo("volunteer", "unlock", "--dir", dir, "--pin-file", join(work, "wrong"));
    assert.equal(wrong.code, 5);
    assert.match(wrong.stderr, /wrong PIN: nothing changed; 9 attempts left before the device erases itself/);
    assert.equal(testigo("volunteer", "unlock", "--dir", dir, ...pin).stdout, "unlocked\n");
    assert.equal(testigo("volunteer", "unlock", "--dir", dir, "--pin-file", join(work, "duress")).stdout, "unlocked\n");

    // Nothing readable on the device: no text, table, pseudonym or PIN.
    for (const name of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, name));
      for (const marker of ["witness blocked", "1401023.3", pseudonym, "481516", "234234"]) {
        assert.equal(bytes.includes(Buffer.from(marker)), false, `${marker} in ${name}`);
      }
    }
  });

  it("unlock prints the same and exits the same with the PIN and the duress PIN; checkin; panic", async () => {
    const pin = ["--pin-file", join(work, "pin")];
    const duress = ["--pin-file", join(work, "duress")];
    // The relay restarted in the previous test: the coordinator's kept-alive socket may be dead
    // (undici answers UND_ERR_SOCKET once, not retried for a POST). One retry.
    const once = <T>(f: () => Promise<T>) => f().catch(() => f());
    const invite = () => once(() => coordinator.invite());
    const kinds = async () => (await once(() => coordinator.fetch())).messages.map((m) => m.kind);
    const enrollInto = async (dir: string, ...extra: string[]) => {
      const run = testigo("volunteer", "enroll", "--dir", dir, "--invite", await invite(), ...pin, ...extra);
      assert.equal(run.code, 0, run.stderr);
    };
    const a = join(work, "phone-a");
    const b = join(work, "phone-b");
    await enrollInto(a, "--duress-pin-file", join(work, "duress"), "--max-failed-unlocks", "4");
    await enrollInto(b, "--duress-pin-file", join(work, "duress"));
    await kinds();

    const real = testigo("volunteer", "unlock", "--dir", a, ...pin);
    const coerced = testigo("volunteer", "unlock", "--dir", b, ...duress);
    assert.deepEqual([coerced.code, coerced.stdout, coerced.stderr], [real.code, real.stdout, real.stderr]);
    assert.deepEqual([real.code, real.stdout], [0, "unlocked\n"]);
    // Each unlock sent one bucket-0 envelope, a check-in: phone-b's is the decoy's, signed with the
    // duress key (its coordinators write it as `duress`), and nothing else told it apart.
    assert.deepEqual(await kinds(), ["checkin", "checkin"]);
    // phone-b's real profile is gone: its PIN now fails like any wrong PIN.
    const after = testigo("volunteer", "unlock", "--dir", b, ...pin);
    assert.equal(after.code, 5);
    assert.match(after.stderr, /wrong PIN: nothing changed; 9 attempts left/);

    // The decoy is enrolled at the relay (it signs with the duress key): a forced report, acta and
    // sync print and exit exactly like on a real profile, and the reports reach the coordinators.
    const reportArgs = ["--table", "12", "--text", "all calm"];
    const realReport = testigo("volunteer", "report", "--dir", a, ...reportArgs, ...pin);
    const forcedReport = testigo("volunteer", "report", "--dir", b, ...reportArgs, ...duress);
    assert.deepEqual(
      [forcedReport.code, forcedReport.stdout, forcedReport.stderr],
      [realReport.code, realReport.stdout, realReport.stderr],
    );
    assert.deepEqual([realReport.code, realReport.stdout], [0, "sent\n"], realReport.stderr);
    const photo = join(work, "decoy-acta.jpg");
    writeFileSync(
      photo,
      new Uint8Array(100_000).map((_, i) => (i * 13) & 0xff),
    );
    const realActa = testigo("volunteer", "acta", "--dir", a, "--table", "12", photo, ...pin);
    const forcedActa = testigo("volunteer", "acta", "--dir", b, "--table", "12", photo, ...duress);
    assert.deepEqual([forcedActa.code, forcedActa.stdout], [realActa.code, realActa.stdout]);
    assert.equal(realActa.code, 0, realActa.stderr);
    const realSync = testigo("volunteer", "sync", "--dir", a, ...pin);
    const forcedSync = testigo("volunteer", "sync", "--dir", b, ...duress);
    assert.deepEqual(
      [forcedSync.code, forcedSync.stdout, forcedSync.stderr],
      [realSync.code, realSync.stdout, realSync.stderr],
    );
    assert.equal(realSync.code, 0, realSync.stderr);
    assert.deepEqual(await kinds(), ["status", "status", "acta", "acta"]);

    const checkin = testigo("volunteer", "checkin", "--dir", a, ...pin);
    assert.deepEqual([checkin.code, checkin.stdout], [0, "sent\n"], checkin.stderr);
    assert.deepEqual(await kinds(), ["checkin"]);
    const wrong = testigo("volunteer", "unlock", "--dir", a, "--pin-file", join(work, "wrong"));
    assert.match(wrong.stderr, /3 attempts left/);

    // A remote wipe through `testigo volunteer sync`: acked, erased, the usual summary, exit 0.
    const c = join(work, "phone-c");
    await enrollInto(c);
    const identity = JSON.parse(testigo("volunteer", "status", "--dir", c, ...pin, "--json").stdout) as {
      pseudonym: string;
    };
    await kinds();
    const encryptionKey = coordinator.encryptionKeyOf(identity.pseudonym) ?? new Uint8Array();
    const wipe = await once(() => coordinator.control({ pseudonym: identity.pseudonym, encryptionKey }));
    const wiped = testigo("volunteer", "sync", "--dir", c, ...pin);
    assert.equal(wiped.code, 0, wiped.stderr);
    assert.match(wiped.stdout, /^sent 0 report\(s\), 0 photo\(s\); outbox: 0 report\(s\), 0 photo\(s\) waiting\n$/);
    assert.deepEqual(await kinds(), ["wipe-ack"]);
    assert.ok(wipe.counter > 0);
    assert.deepEqual(readdirSync(c), ["keyslots.json"]);
    assert.equal(testigo("volunteer", "unlock", "--dir", c, ...pin).code, 5);

    const panic = testigo("volunteer", "panic", "--dir", a);
    assert.deepEqual([panic.code, panic.stdout], [0, "erased\n"]);
    assert.deepEqual(readdirSync(a), ["keyslots.json"]);
    assert.equal(testigo("volunteer", "unlock", "--dir", a, ...pin).code, 5);
  });

  it("refuses secrets on the command line and explains every command with --help", () => {
    assert.equal(testigo("volunteer", "unlock", "--dir", work, "--pin", "123456").code, 2);
    for (const command of ["enroll", "report", "acta", "sync", "status", "unlock", "checkin", "set-duress-pin"]) {
      const help = testigo("volunteer", command, "--help");
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`^usage: testigo volunteer ${command} --dir DIR`));
    }
    assert.match(testigo("volunteer", "panic", "--help").stdout, /^usage: testigo volunteer panic --dir DIR$/m);
  });

  it("a wrong --dir is reported as no device there, and no folder is created", () => {
    const missing = join(work, "no-such-device");
    for (const command of ["status", "sync", "unlock"]) {
      const run = testigo("volunteer", command, "--dir", missing, "--pin-file", join(work, "pin"));
      assert.equal(run.code, 6, `${command}: ${run.stderr}`);
      assert.match(run.stderr, /no enrolled device in .*no-such-device \(no such folder\): check --dir/);
      assert.equal(existsSync(missing), false, `${command} created ${missing}`);
    }
  });
});
