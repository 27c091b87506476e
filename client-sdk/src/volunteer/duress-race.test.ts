// Two or three `testigo` commands at once on one device folder, as real child processes of the
// real binary (default argon2id cost, so each unlock's read-argon2id-write window is wide): a
// command with the PIN, a duress unlock and a wrong-PIN command, started together with random
// small offsets, many times. Whatever the interleaving, after the duress unlock the real slot
// never comes back: the PIN never opens the real profile again, no file of the folder decrypts
// under the real data key, the duress PIN opens the decoy, and no lock file is left behind
// (duress-and-wipe.md §2.3, NodeStorage.exclusive).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { initSodium } from "@testigo/protocol";
import { MIN_KDF_LIMITS, parseKeySlotFile, unlockKeySlots } from "../crypto/key-slots.js";
import { LOCK_FILE, NodeStorage } from "../storage/node-storage.js";
import { ProfileStore } from "../storage/profile-store.js";
import { syntheticActa } from "../testing/acta-photos.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { enroll } from "./enroll.js";
import { KEY_SLOT_FILE } from "./records.js";
import { type TestCoordinator, testCoordinator } from "./test-coordinator.js";
import { Volunteer } from "./volunteer.js";

const BIN = fileURLToPath(new URL("../../bin/testigo.js", import.meta.url));
const PIN = "481516";
const DURESS = "234234";
const WRONG = "000000";
const ROUNDS = 10;

function testigo(args: string[], pin: string, delayMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    setTimeout(() => {
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, TESTIGO_PIN: pin },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once("exit", (code) => resolve({ code, stderr }));
    }, delayMs);
  });
}

describe("concurrent commands on one device folder (real binary, real processes)", () => {
  let relay: RelayProcess;
  let coordinator: TestCoordinator;
  let work: string;

  before(async () => {
    await initSodium();
    relay = await startRelay();
    coordinator = await testCoordinator(relay.url, relay.token);
    work = mkdtempSync(join(tmpdir(), "testigo-duress-race-"));
  });
  after(async () => {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("a profile opened with the PIN before a duress unlock in another process: its writes after it stay unreadable, its sync fails like a wrong PIN and writes no slot", async () => {
    const dir = join(work, "opened-before");
    await enroll({
      storage: await NodeStorage.open(dir),
      inviteCode: await coordinator.invite(),
      pin: PIN,
      duressPin: DURESS,
      limits: MIN_KDF_LIMITS,
      now: Date.now,
    });
    const keys = unlockKeySlots(parseKeySlotFile(readFileSync(join(dir, KEY_SLOT_FILE))), PIN);
    assert.ok(keys !== undefined);
    const real = await Volunteer.open(await NodeStorage.open(dir), PIN);
    await real.sync({ budgetMs: 5_000, sleep: async () => undefined, random: () => 0 });
    const decoy = await Volunteer.open(await NodeStorage.open(dir), DURESS);
    // The real profile's process goes on: it queues an acta (its photo's chunks are written under
    // its data key, now on no slot, before its identity is found missing) and syncs; both fail
    // like a wrong PIN, deleting what it wrote.
    await assert.rejects(real.acta({ table: "9", photos: [syntheticActa(300_000).bytes] }), /wrong PIN/);
    await assert.rejects(real.sync({ budgetMs: 5_000, sleep: async () => undefined, random: () => 0 }), /wrong PIN/);
    const file = parseKeySlotFile(readFileSync(join(dir, KEY_SLOT_FILE)));
    assert.equal(unlockKeySlots(file, PIN), undefined);
    const realRecords: ProfileStore = new ProfileStore(await NodeStorage.open(dir), keys.dataKey, keys.profileId);
    assert.deepEqual(await realRecords.list(""), []);
    assert.equal((await decoy.flush(5_000))?.envelopesSent, 1);
    await coordinator.fetch();
  });

  it("a command with the PIN, a duress unlock and a wrong PIN racing: the real profile never comes back", async () => {
    const template = join(work, "template");
    // Default argon2id limits, as the CLI enrolls: the widest read-modify-write window.
    await enroll({
      storage: await NodeStorage.open(template),
      inviteCode: await coordinator.invite(),
      pin: PIN,
      duressPin: DURESS,
      now: Date.now,
    });
    const real = await Volunteer.open(await NodeStorage.open(template), PIN);
    await real.sync({ budgetMs: 5_000, sleep: async () => undefined, random: () => 0 });
    await real.report("7", "queued before the race");
    const realKeys = unlockKeySlots(parseKeySlotFile(readFileSync(join(template, KEY_SLOT_FILE))), PIN);
    assert.ok(realKeys !== undefined);
    await coordinator.fetch();

    const withPin = [
      ["volunteer", "sync", "--timeout", "2"],
      ["volunteer", "unlock"],
      ["volunteer", "report", "--table", "8", "--text", "during the race", "--timeout", "2"],
    ];
    const outcomes: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const dir = join(work, `round-${round}`);
      cpSync(template, dir, { recursive: true });
      const command = withPin[round % withPin.length] ?? [];
      const jitter = () => Math.floor(Math.random() * 250);
      const [a, b, c] = await Promise.all([
        testigo([...command, "--dir", dir], PIN, jitter()),
        testigo(["volunteer", "unlock", "--dir", dir], DURESS, jitter()),
        testigo(["volunteer", "status", "--dir", dir], WRONG, jitter()),
      ]);
      outcomes.push(`${command[1]}:${a.code}/unlock:${b.code}/wrong:${c.code}`);
      assert.equal(b.code, 0, `round ${round}: the duress unlock succeeds: ${b.stderr}`);
      assert.equal(c.code, 5, `round ${round}: the wrong PIN is refused: ${c.stderr}`);

      const file = parseKeySlotFile(readFileSync(join(dir, KEY_SLOT_FILE)));
      assert.equal(
        unlockKeySlots(file, PIN),
        undefined,
        `round ${round} (${outcomes.at(-1)}): the real slot came back`,
      );
      assert.ok(unlockKeySlots(file, DURESS) !== undefined, `round ${round}: the decoy opens`);
      assert.equal(existsSync(join(dir, LOCK_FILE)), false, `round ${round}: a lock file was left behind`);
      // No record file decrypts under the real data key (nothing the PIN's process wrote survives).
      const realRecords: ProfileStore = new ProfileStore(
        await NodeStorage.open(dir),
        realKeys.dataKey,
        realKeys.profileId,
      );
      assert.deepEqual(await realRecords.list(""), [], `round ${round} (${outcomes.at(-1)}): real records remain`);
      // The PIN now fails like a wrong PIN, and the duress PIN keeps opening the decoy.
      await assert.rejects(Volunteer.open(await NodeStorage.open(dir), PIN), /wrong PIN/);
      const decoy = await Volunteer.open(await NodeStorage.open(dir), DURESS);
      assert.equal(decoy.identity.pseudonym, real.identity.pseudonym);
      assert.equal(readdirSync(dir).includes(LOCK_FILE), false);
    }
    await coordinator.fetch();
  });
});
