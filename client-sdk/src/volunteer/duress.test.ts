// Issue 5 on the device, end to end through a REAL relay child process and real files: the duress
// PIN, remote wipe (and refused wipes), panic, the wrong-PIN limit and check-ins. After every
// erase, every file in the device folder is scanned for the real keys, the plaintext markers and
// the photo bytes, raw and in base64, base64url and hex.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type AuthStatement,
  fromBase64url,
  generateSigningKeyPair,
  initSodium,
  verifyAuthStatement,
} from "@testigo/protocol";
import {
  clearCapsule,
  MIN_KDF_LIMITS,
  openCapsule,
  parseKeySlotFile,
  serializeKeySlotFile,
  unlockKeySlots,
} from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { NodeStorage } from "../storage/node-storage.js";
import { ProfileStore } from "../storage/profile-store.js";
import type { BatchWrite } from "../storage/storage.js";
import { type ActaPhoto, actaPhotos } from "../testing/acta-photos.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { fetchTransport, type HttpTransport } from "../transport/http.js";
import { enroll } from "./enroll.js";
import { VolunteerError, WrongPin } from "./errors.js";
import { loadOutbox, queueStatus } from "./outbox.js";
import { KEY_SLOT_FILE } from "./records.js";
import { type TestCoordinator, testCoordinator } from "./test-coordinator.js";
import { panic, Volunteer } from "./volunteer.js";

const PIN = "246810";
const DURESS = "135799";
const noWait = { sleep: async () => undefined, random: () => 0 };

/** Every form a secret could take in a file. */
function forms(bytes: Uint8Array): Buffer[] {
  const b = Buffer.from(bytes);
  return [b, Buffer.from(b.toString("base64url")), Buffer.from(b.toString("base64")), Buffer.from(b.toString("hex"))];
}

/** Asserts that no file of `dir` contains any needle (bytes in every form, strings as UTF-8). */
function scan(dir: string, needles: { bytes: Uint8Array[]; strings: string[] }): void {
  const patterns = [...needles.bytes.flatMap(forms), ...needles.strings.map((s) => Buffer.from(s))];
  for (const name of readdirSync(dir)) {
    const content = readFileSync(join(dir, name));
    for (const pattern of patterns) {
      assert.equal(content.includes(pattern), false, `${name} holds ${pattern.subarray(0, 12).toString()}…`);
      assert.equal(name.includes(pattern.toString()), false);
    }
  }
}

/**
 * Everything `pin` can decrypt in `dir`: every record of the profile it opens, and the capsule
 * opened with that profile's capsule key (what an adversary who forced the PIN could read).
 */
async function openableWith(dir: string, pin: string): Promise<Uint8Array[]> {
  const file = parseKeySlotFile(readFileSync(join(dir, KEY_SLOT_FILE)));
  const unlocked = unlockKeySlots(file, pin);
  assert.ok(unlocked !== undefined, "the PIN opens a profile");
  const records = new ProfileStore(await NodeStorage.open(dir), unlocked.dataKey, unlocked.profileId);
  const out: Uint8Array[] = [];
  for (const name of await records.list("")) out.push((await records.get(name)) ?? new Uint8Array());
  const keys = JSON.parse(Buffer.from((await records.get("capsule-keys")) ?? new Uint8Array()).toString()) as {
    secretKey: string;
  };
  const capsule = openCapsule(file, fromBase64url(keys.secretKey) ?? new Uint8Array());
  if (capsule !== undefined) out.push(capsule);
  return out;
}

/** Asserts that none of `plaintexts` holds any of `secrets`, in any form. */
function assertNoneHolds(plaintexts: Uint8Array[], secrets: Uint8Array[]): void {
  const patterns = secrets.flatMap(forms);
  for (const plaintext of plaintexts) {
    const content = Buffer.from(plaintext);
    for (const pattern of patterns)
      assert.equal(content.includes(pattern), false, "a decrypted record holds a real key");
  }
}

/** In-memory device storage that dies ("kill -9") at its `crashAt`-th write or delete. */
class CrashingStorage extends MemoryStorage {
  ops = 0;
  crashAt = Number.POSITIVE_INFINITY;

  static async copyOf(source: MemoryStorage): Promise<CrashingStorage> {
    const copy = new CrashingStorage();
    for (const name of await source.list("")) await copy.write(name, (await source.read(name)) ?? new Uint8Array());
    copy.ops = 0;
    return copy;
  }

  private step(): void {
    if (++this.ops < this.crashAt) return;
    this.crashAt = Number.POSITIVE_INFINITY;
    throw new Error("kill -9");
  }

  override async write(name: string, data: Uint8Array): Promise<void> {
    this.step();
    await super.write(name, data);
  }

  override async delete(name: string): Promise<void> {
    this.step();
    await super.delete(name);
  }
}

/** In-memory device storage that records its durable writes: key-slot file writes and batches. */
class CountingStorage extends MemoryStorage {
  writes: string[] = [];
  unlinks = 0;

  static async copyOf(source: MemoryStorage): Promise<CountingStorage> {
    const copy = new CountingStorage();
    for (const name of await source.list("")) await copy.write(name, (await source.read(name)) ?? new Uint8Array());
    copy.writes = [];
    return copy;
  }

  override async write(name: string, data: Uint8Array): Promise<void> {
    this.writes.push(name.startsWith("r") ? "record" : name);
    await super.write(name, data);
  }

  override async batch(writes: readonly BatchWrite[], deletes: readonly string[] = []): Promise<void> {
    this.writes.push(`batch:${writes.length}`);
    this.unlinks += deletes.length;
    const before = this.writes.length;
    await super.batch(writes, deletes);
    this.writes.length = before;
  }
}

/** In-memory device storage that runs a hook just before its next batch lands. */
class InterleavingStorage extends MemoryStorage {
  beforeNextBatch: (() => Promise<void>) | undefined;

  override async batch(writes: readonly BatchWrite[], deletes: readonly string[] = []): Promise<void> {
    const hook = this.beforeNextBatch;
    this.beforeNextBatch = undefined;
    await hook?.();
    await super.batch(writes, deletes);
  }
}

async function assertWrongPin(dir: string, pin: string, attemptsLeft: number): Promise<void> {
  await assert.rejects(Volunteer.open(await NodeStorage.open(dir), pin), (error: unknown) => {
    assert.ok(error instanceof WrongPin);
    assert.equal(error.attemptsLeft, attemptsLeft);
    return true;
  });
}

describe("duress, wipe, panic, wrong-PIN limit and check-ins (real relay, real files)", () => {
  let relay: RelayProcess;
  let coordinator: TestCoordinator;
  let work: string;

  before(async () => {
    await initSodium();
    relay = await startRelay();
    coordinator = await testCoordinator(relay.url, relay.token);
    work = mkdtempSync(join(tmpdir(), "testigo-duress-"));
  });
  after(async () => {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  });

  async function device(name: string, options: { duress?: boolean; maxFailedUnlocks?: number; checkin?: number } = {}) {
    const dir = join(work, name);
    const enrolled = await enroll({
      storage: await NodeStorage.open(dir),
      inviteCode: await coordinator.invite(),
      pin: PIN,
      ...(options.duress === false ? {} : { duressPin: DURESS }),
      ...(options.maxFailedUnlocks === undefined ? {} : { maxFailedUnlocks: options.maxFailedUnlocks }),
      ...(options.checkin === undefined ? {} : { checkinIntervalMs: options.checkin }),
      limits: MIN_KDF_LIMITS,
      now: Date.now,
    });
    const real = await Volunteer.open(await NodeStorage.open(dir), PIN);
    await real.sync({ budgetMs: 5_000, ...noWait });
    await coordinator.fetch();
    // The real profile's data key, read the way an attacker with the PIN would (for the scan).
    const slots = parseKeySlotFile(readFileSync(join(dir, KEY_SLOT_FILE)));
    const dataKey = unlockKeySlots(slots, PIN)?.dataKey ?? new Uint8Array();
    return { dir, enrolled, real, dataKey };
  }

  /** Opens `dir` with the duress PIN and flushes: one envelope leaves, a check-in signed by D. */
  async function assertDuressUnlockAlerts(dir: string, real: Volunteer): Promise<Volunteer> {
    const decoy = await Volunteer.open(await NodeStorage.open(dir), DURESS);
    assert.equal((await decoy.flush(5_000))?.envelopesSent, 1);
    const { messages, senders } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => m.kind),
      ["checkin"],
    );
    assert.equal(senders[0], real.identity.duress.publicKey);
    return decoy;
  }

  function secretsOf(real: Volunteer, dataKey: Uint8Array): Uint8Array[] {
    const b = (text: string) => fromBase64url(text) ?? new Uint8Array();
    return [
      b(real.identity.signing.privateKey),
      b(real.identity.signing.privateKey).subarray(0, 32),
      b(real.identity.encryption.privateKey),
      dataKey,
    ];
  }

  it("duress PIN: the real profile is erased at once, the decoy's check-in (signed with the duress key) is the alert, the decoy opens", async () => {
    const { dir, real, dataKey } = await device("duress");
    const photo = (actaPhotos(1)[0] as ActaPhoto).bytes;
    await real.report("MARKER-TABLE-7", "MARKER-TEXT soldiers at the school");
    await real.acta({ table: "MARKER-TABLE-7", photos: [photo] });

    // Offline: the erase must not wait for the network.
    await relay.stop();
    try {
      const decoy = await Volunteer.open(await NodeStorage.open(dir), DURESS);
      // The decoy is the same pseudonym, signing with the duress key D (never the real key).
      assert.equal(decoy.identity.pseudonym, real.identity.pseudonym);
      assert.equal(decoy.identity.signing.publicKey, real.identity.duress.publicKey);
      assert.equal((await decoy.flush(200))?.unreachable !== undefined, true);
      // Whoever forced the duress PIN reads in the decoy's outbox what a real unlock leaves: the
      // queued report, acta and photo (cover items of the same shape, spec §2.4; the queued
      // report stands for the unlock's check-in), nothing of kind `duress`.
      const outbox = await loadOutbox(decoy.store);
      assert.deepEqual(
        outbox.map((item) => (item.type === "envelope" ? item.message.kind : item.type)),
        ["status", "acta", "photo"],
      );
      assert.ok(
        outbox.every((item) => (item.type === "envelope" ? "cover" in item.message : item.cover !== undefined)),
      );
      scan(dir, {
        bytes: [...secretsOf(real, dataKey), photo.subarray(5_000, 5_064)],
        strings: ["MARKER", "soldiers", real.identity.pseudonym, real.identity.invite.storedHash, PIN, DURESS],
      });
      // Nothing the duress PIN decrypts (records, capsule) holds a byte of the real signing key.
      assertNoneHolds(await openableWith(dir, DURESS), secretsOf(real, dataKey).slice(0, 3));
      await assertWrongPin(dir, PIN, 9);
    } finally {
      await relay.restart();
    }

    // Back online: the next unlock with the duress PIN sends the cover items (no check-in: a
    // short report is queued), all signed with D, marked `cover` inside the envelope.
    const decoy = await Volunteer.open(await NodeStorage.open(dir), DURESS);
    const flushed = await decoy.flush(5_000);
    assert.deepEqual([flushed?.envelopesSent, flushed?.photosSent], [2, 1]);
    const covers = await coordinator.fetch();
    assert.deepEqual(
      covers.messages.map((m) => [m.kind, "cover" in m ? m.cover : undefined]),
      [
        ["status", true],
        ["acta", true],
      ],
    );
    assert.deepEqual(new Set(covers.senders), new Set([real.identity.duress.publicKey]));
    // The decoy's status shows a device that syncs, like the real one did.
    assert.notEqual((await decoy.status()).lastSuccessAt, null);
    // Then the decoy is an ordinary device of that pseudonym: its unlock sends a check-in, its
    // reports and actas go through the relay, all signed with D.
    const again = await Volunteer.open(await NodeStorage.open(dir), DURESS);
    assert.equal(again.identity.pseudonym, decoy.identity.pseudonym);
    assert.equal((await again.flush(5_000))?.envelopesSent, 1);
    await again.report("12", "all calm");
    await again.acta({ table: "12", photos: [photo] });
    const run = await again.sync({ budgetMs: 5_000, ...noWait });
    assert.deepEqual([run.envelopesSent, run.photosSent, run.refused.length], [2, 1, 0]);
    const later = await coordinator.fetch();
    assert.deepEqual(
      later.messages.map((m) => m.kind),
      ["checkin", "status", "acta"],
    );
    assert.deepEqual(new Set(later.senders), new Set([real.identity.duress.publicKey]));
    scan(dir, { bytes: secretsOf(real, dataKey), strings: [real.identity.pseudonym] });
    assertNoneHolds(await openableWith(dir, DURESS), secretsOf(real, dataKey).slice(0, 3));
  });

  it("the duress alert (a check-in signed with D) is the same size on the wire as a status report and a real check-in", async () => {
    const a = await device("wire-a", { duress: false });
    const b = await device("wire-b");
    await a.real.report("12", "all calm");
    await a.real.checkin();
    await a.real.sync({ budgetMs: 5_000, ...noWait });
    await (await Volunteer.open(await NodeStorage.open(b.dir), DURESS)).flush(5_000);
    const { messages, sizes, senders } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => m.kind),
      ["status", "checkin", "checkin"],
    );
    assert.equal(senders[2], b.real.identity.duress.publicKey);
    assert.equal(new Set(sizes).size, 1, `sizes ${sizes.join(", ")}`);
  });

  it("remote wipe: verified, acknowledged, then everything erased; the PIN then fails like a wrong PIN", async () => {
    const { dir, real, dataKey } = await device("wipe");
    await real.report("MARKER-TABLE-8", "MARKER-TEXT queued before the wipe");
    const identity = real.identity;
    const wipe = await coordinator.control({
      pseudonym: identity.pseudonym,
      encryptionKey: fromBase64url(identity.encryption.publicKey) ?? new Uint8Array(),
    });
    const result = await real.sync({ budgetMs: 5_000, ...noWait });
    assert.equal(result.wiped, true);
    const { messages } = await coordinator.fetch();
    const ack = messages.find((m) => m.kind === "wipe-ack");
    assert.ok(ack?.kind === "wipe-ack");
    assert.equal(ack.counter, wipe.counter);
    scan(dir, { bytes: secretsOf(real, dataKey), strings: ["MARKER", identity.pseudonym] });
    await assertWrongPin(dir, PIN, 9);
    await assertWrongPin(dir, DURESS, 8);
  });

  it("a permanent relay refusal of the duress unlock's check-in: the next unlock's check-in carries the alert", async () => {
    const { dir, real } = await device("duress-refused");
    const refuse: HttpTransport = async (request) => {
      if (request.method === "POST" && request.url.endsWith("/envelopes")) {
        const body = JSON.stringify({ error: { code: "PAYLOAD_TOO_LARGE", message: "refused by the test" } });
        return { status: 413, headers: { "content-type": "application/json" }, body: new TextEncoder().encode(body) };
      }
      return fetchTransport(request);
    };
    const refused = await Volunteer.open(await NodeStorage.open(dir), DURESS, { transport: refuse });
    assert.equal((await refused.flush(1_000))?.envelopesSent, 0);
    assert.deepEqual((await coordinator.fetch()).messages, []);
    await assertDuressUnlockAlerts(dir, real);
  });

  it("a device the coordinators revoked at the relay erases itself at its next sync", async () => {
    const { dir, real, dataKey } = await device("revoked");
    await real.report("MARKER-TABLE-9", "MARKER-TEXT queued before the revocation");
    await coordinator.client.revokeVolunteer(real.identity.pseudonym);
    const opened = await Volunteer.open(await NodeStorage.open(dir), PIN);
    await assert.rejects(opened.sync({ budgetMs: 5_000, ...noWait }), (error: unknown) => {
      assert.ok(error instanceof VolunteerError);
      assert.equal(error.code, "NOT_ENROLLED");
      return true;
    });
    scan(dir, { bytes: secretsOf(real, dataKey), strings: ["MARKER", real.identity.pseudonym] });
    await assertWrongPin(dir, PIN, 9);
  });

  it("the files do not show whether a duress PIN is set: same count and sizes with and without", async () => {
    const shape = async (name: string, duress: boolean) => {
      const dir = join(work, name);
      await enroll({
        storage: await NodeStorage.open(dir),
        inviteCode: await coordinator.invite(),
        pin: PIN,
        ...(duress ? { duressPin: DURESS } : {}),
        limits: MIN_KDF_LIMITS,
        now: Date.now,
      });
      return readdirSync(dir)
        .map((file) => readFileSync(join(dir, file)).length)
        .sort((a, b) => a - b);
    };
    const without = await shape("shape-without", false);
    const withDuress = await shape("shape-with", true);
    assert.ok(without.length > 2);
    assert.deepEqual(without, withDuress);
    // Without a duress PIN, the duress PIN opens nothing; setting one later still works.
    await assertWrongPin(join(work, "shape-without"), DURESS, 9);
    const real = await Volunteer.open(await NodeStorage.open(join(work, "shape-without")), PIN);
    await real.setDuressPin(DURESS);
    const decoy = await Volunteer.open(await NodeStorage.open(join(work, "shape-without")), DURESS);
    assert.equal(decoy.identity.pseudonym, real.identity.pseudonym);
    assert.equal(decoy.identity.signing.publicKey, real.identity.duress.publicKey);
  });

  it("after a duress unlock the folder has a real unlock's shape: same file count and sizes, a second profile it cannot open", async () => {
    const a = await device("unlocked-real");
    const b = await device("unlocked-duress");
    const shape = async (dir: string, pin: string) => {
      const storage = await NodeStorage.open(dir);
      const opened = await Volunteer.open(storage, pin);
      await opened.flush(5_000);
      const sizes = readdirSync(dir)
        .map((file) => readFileSync(join(dir, file)).length)
        .sort((x, y) => x - y);
      const foreign = (await storage.list("r")).length - (await opened.store.records.list("")).length;
      return { sizes, foreign };
    };
    const real = await shape(a.dir, PIN);
    const duress = await shape(b.dir, DURESS);
    await coordinator.fetch();
    // A real profile always sits beside a second profile's records it cannot open: so does the decoy.
    assert.ok(real.foreign > 0);
    assert.deepEqual(duress, real);
    // The filler is no profile: the real PIN opens nothing, and a second duress unlock writes no other.
    await assertWrongPin(b.dir, PIN, 9);
    assert.deepEqual(await shape(b.dir, DURESS), duress);
    await coordinator.fetch();
  });

  it("`status` right after a forced duress PIN shows what the real profile's showed (its last sync), and sends nothing", async () => {
    const { dir } = await device("status-after-duress");
    const real = await (await Volunteer.open(await NodeStorage.open(dir), PIN)).status();
    assert.notEqual(real.lastSyncAt, null);
    const decoy = await (await Volunteer.open(await NodeStorage.open(dir), DURESS)).status();
    assert.deepEqual(decoy, real);
    assert.deepEqual((await coordinator.fetch()).messages, []);
    await assertWrongPin(dir, PIN, 9);
  });

  it("a `sync` right after an unlock sends the same envelopes with the PIN and with the duress PIN: the decoy's check-in timer is the real profile's", async () => {
    const interval = 30 * 60_000;
    const { dir, real } = await device("sync-after-unlock", { checkin: interval });
    let t = Date.now() + 2 * interval;
    const now = () => t;
    // The volunteer's own unlock: its check-in goes out. Two minutes later the phone is seized.
    assert.equal(
      (await (await Volunteer.open(await NodeStorage.open(dir), PIN, { now })).flush(5_000))?.envelopesSent,
      1,
    );
    await coordinator.fetch();
    t += 2 * 60_000;
    const copy = `${dir}-copy`;
    cpSync(dir, copy, { recursive: true });
    const withPin = await Volunteer.open(await NodeStorage.open(dir), PIN, { now });
    const withDuress = await Volunteer.open(await NodeStorage.open(copy), DURESS, { now });
    const sent = async () => [
      (await withPin.sync({ budgetMs: 5_000, ...noWait })).envelopesSent,
      (await withDuress.sync({ budgetMs: 5_000, ...noWait })).envelopesSent,
    ];
    // `testigo volunteer sync`: no check-in is due for either.
    assert.deepEqual(await sent(), [0, 0]);
    assert.deepEqual((await coordinator.fetch()).messages, []);
    // Once the interval has passed since that check-in, both send one.
    t += interval;
    assert.deepEqual(await sent(), [1, 1]);
    const { messages, senders, sizes } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => m.kind),
      ["checkin", "checkin"],
    );
    assert.deepEqual(new Set(senders), new Set([real.identity.signing.publicKey, real.identity.duress.publicKey]));
    assert.equal(new Set(sizes).size, 1);
  });

  it("a crash anywhere in set-duress-pin never leaves a duress PIN that erases nothing; an unlock with the PIN re-seals a lost capsule", async () => {
    const template = new MemoryStorage();
    await enroll({
      storage: template,
      inviteCode: await coordinator.invite(),
      pin: PIN,
      limits: MIN_KDF_LIMITS,
      now: Date.now,
    });
    const counting = await CrashingStorage.copyOf(template);
    const counted = await Volunteer.open(counting, PIN);
    const opened = counting.ops;
    await counted.setDuressPin(DURESS);
    const steps = counting.ops - opened;
    assert.ok(steps > 2);
    for (let step = 1; step <= steps; step++) {
      const storage = await CrashingStorage.copyOf(template);
      const real = await Volunteer.open(storage, PIN);
      storage.crashAt = storage.ops + step;
      await assert.rejects(real.setDuressPin(DURESS), /kill -9/);
      // The duress PIN forced right away, with no unlock with the PIN in between: it opens
      // nothing (set-duress-pin never committed) or it erases the real profile, never neither.
      const forced = await Volunteer.open(storage, DURESS).catch((error: unknown) => error);
      if (forced instanceof WrongPin) {
        const again = await Volunteer.open(storage, PIN);
        assert.equal(again.identity.pseudonym, real.identity.pseudonym, `step ${step}: the real profile is intact`);
        await again.setDuressPin(DURESS);
        await Volunteer.open(storage, DURESS);
      } else {
        assert.ok(forced instanceof Volunteer, `step ${step}: ${String(forced)}`);
        assert.equal(forced.identity.signing.publicKey, real.identity.duress.publicKey);
      }
      await assert.rejects(Volunteer.open(storage, PIN), WrongPin, `step ${step}: the real profile is erased`);
    }

    // A capsule that no longer opens for the decoy (random bytes: what an interrupted
    // set-duress-pin of an earlier version left): the next unlock with the PIN seals it again.
    const lost = await CrashingStorage.copyOf(template);
    await (await Volunteer.open(lost, PIN)).setDuressPin(DURESS);
    const file = parseKeySlotFile((await lost.read(KEY_SLOT_FILE)) ?? new Uint8Array());
    await lost.write(KEY_SLOT_FILE, serializeKeySlotFile(clearCapsule(file)));
    await Volunteer.open(lost, PIN);
    await Volunteer.open(lost, DURESS);
    await assert.rejects(Volunteer.open(lost, PIN), WrongPin);
  });

  it("a real unlock and a duress unlock make the same durable writes (photos queued: the duress one unlinks more)", async () => {
    const template = new MemoryStorage();
    await enroll({
      storage: template,
      inviteCode: await coordinator.invite(),
      pin: PIN,
      duressPin: DURESS,
      limits: MIN_KDF_LIMITS,
      now: Date.now,
    });
    const real = await Volunteer.open(template, PIN);
    await real.sync({ budgetMs: 5_000, ...noWait });
    await coordinator.fetch();
    // Nothing queued: seven writes in the batch either way (no pads, nothing unlinked by the PIN).
    const idle = [await CountingStorage.copyOf(template), await CountingStorage.copyOf(template)];
    await Volunteer.open(idle[0] as CountingStorage, PIN);
    await Volunteer.open(idle[1] as CountingStorage, DURESS);
    assert.deepEqual(idle[0]?.writes, [KEY_SLOT_FILE, "batch:7", KEY_SLOT_FILE]);
    assert.equal(idle[0]?.unlinks, 0);
    assert.deepEqual(idle[1]?.writes, idle[0]?.writes);
    await real.report("7", "queued");
    await real.acta({ table: "7", photos: [(actaPhotos(1)[0] as ActaPhoto).bytes] });
    const writesOf = async (pin: string) => {
      const storage = await CountingStorage.copyOf(template);
      await Volunteer.open(storage, pin);
      return storage;
    };
    const withPin = await writesOf(PIN);
    const withDuress = await writesOf(DURESS);
    // One key-slot write in the unlock, one batch, one key-slot write. The batch, for the duress
    // PIN: the filler's six records, the decoy's sync log, outbox index and seq, and three cover
    // items; for the PIN: seven records re-written and five pads of the same sizes, which the
    // same batch unlinks (it never re-writes the outbox, its items or the mailbox).
    assert.deepEqual(withPin.writes, [KEY_SLOT_FILE, "batch:12", KEY_SLOT_FILE]);
    assert.deepEqual(withDuress.writes, withPin.writes);
    assert.equal(withPin.unlinks, 5);
    assert.ok(withDuress.unlinks > 10, `the real profile's files are unlinked (${withDuress.unlinks})`);
    await assert.rejects(Volunteer.open(withDuress, PIN), WrongPin);
  });

  it("a real unlock re-writes nothing another command may be changing: a report queued during its batch survives", async () => {
    const storage = new InterleavingStorage();
    await enroll({
      storage,
      inviteCode: await coordinator.invite(),
      pin: PIN,
      duressPin: DURESS,
      limits: MIN_KDF_LIMITS,
      now: Date.now,
    });
    const first = await Volunteer.open(storage, PIN);
    // Another command queues a report after the unlock read the folder and before its batch lands
    // (queueMessage does not take the folder's lock; the unlock holds it).
    storage.beforeNextBatch = async () => {
      await queueStatus(first.store, { table: "9", text: "queued meanwhile" }, Date.now());
    };
    const second = await Volunteer.open(storage, PIN);
    assert.equal(storage.beforeNextBatch, undefined, "the interleaving ran");
    const texts = (await loadOutbox(second.store)).flatMap((item) =>
      item.type === "envelope" ? [item.message.text] : [],
    );
    assert.ok(texts.includes("queued meanwhile"), `the report queued meanwhile is still queued: ${texts}`);
  });

  it("with reports, an acta and notices queued, the duress PIN shows the same status and sends the same requests as the PIN", async () => {
    const { dir, real } = await device("queued-parity");
    const identity = real.identity;
    const to = {
      pseudonym: identity.pseudonym,
      encryptionKey: fromBase64url(identity.encryption.publicKey) ?? new Uint8Array(),
    };
    await coordinator.control(to, { payload: { kind: "notice", text: "polls close at 18:00", ackBy: undefined } });
    assert.equal((await real.sync({ budgetMs: 5_000, ...noWait })).controls.length, 1);
    await real.report("MARKER-TABLE-3", "MARKER-TEXT queue at the door");
    await real.acta({ table: "MARKER-TABLE-3", photos: actaPhotos(2).map((p) => p.bytes), tallies: { A: 12, B: 7 } });
    await real.report("MARKER-TABLE-3", "MARKER-TEXT counting started");
    // Two images of the same phone: one opened with the PIN, one with the duress PIN.
    const withPin = join(work, "queued-parity-pin");
    const withDuress = join(work, "queued-parity-duress");
    cpSync(dir, withPin, { recursive: true });
    cpSync(dir, withDuress, { recursive: true });
    const wire = { pin: [] as string[], duress: [] as string[] };
    const sessionSigners: string[] = [];
    const duressKey = fromBase64url(identity.duress.publicKey) ?? new Uint8Array();
    const recording =
      (log: string[]): HttpTransport =>
      async (request) => {
        if (request.url.endsWith("/v1/auth/session")) {
          // Which key signed the session: the relay would see it. Both copies must sign with D.
          const { signature, ...statement } = JSON.parse(new TextDecoder().decode(request.body)) as AuthStatement & {
            signature: string;
          };
          sessionSigners.push(verifyAuthStatement(statement, signature, duressKey) ? "D" : "other");
        }
        const response = await fetchTransport(request);
        const route = new URL(request.url).pathname.replace(/\/(photos|mailbox)\/[^/]+/, "/$1/:id");
        log.push(`${request.method} ${route} ${request.body?.length ?? 0} -> ${response.status}`);
        return response;
      };
    const pin = await Volunteer.open(await NodeStorage.open(withPin), PIN, { transport: recording(wire.pin) });
    const duress = await Volunteer.open(await NodeStorage.open(withDuress), DURESS, {
      transport: recording(wire.duress),
    });
    // `status`: the same counts, sync times and notices.
    const shown = await pin.status();
    assert.deepEqual(shown.outbox, {
      envelopes: 3,
      actas: 1,
      photos: 2,
      chunks: shown.outbox.chunks,
      refused: 0,
      kept: 0,
    });
    assert.ok(shown.outbox.chunks > 2);
    assert.equal(shown.notices, 1);
    assert.deepEqual(await duress.status(), shown);
    // Online: the same requests (route, body size, answer) in the same order.
    const sentWithPin = await pin.flush(10_000);
    const fromPin = await coordinator.fetch();
    const sentWithDuress = await duress.flush(10_000);
    const fromDuress = await coordinator.fetch();
    assert.deepEqual(sentWithDuress, { ...sentWithPin, controls: sentWithDuress?.controls });
    assert.deepEqual([sentWithPin?.envelopesSent, sentWithPin?.photosSent], [3, 2]);
    assert.deepEqual(wire.duress, wire.pin);
    assert.deepEqual(sessionSigners, ["D", "D"]);
    assert.deepEqual(fromDuress.sizes, fromPin.sizes);
    assert.deepEqual(fromDuress.photos.length, fromPin.photos.length);
    // The coordinators get the real reports from the PIN's copy, covers signed with D from the other.
    assert.deepEqual(
      fromDuress.messages.map((m) => [m.kind, "cover" in m && m.cover]),
      [
        ["status", true],
        ["acta", true],
        ["status", true],
      ],
    );
    assert.deepEqual(new Set(fromDuress.senders), new Set([identity.duress.publicKey]));
    assert.ok(fromPin.messages.every((m) => !("cover" in m)));
    assert.deepEqual((await duress.status()).outbox, (await pin.status()).outbox);
  });

  it("a real unlock and a duress unlock each send exactly one envelope of the same size", async () => {
    const { dir } = await device("unlock-wire");
    const real = await Volunteer.open(await NodeStorage.open(dir), PIN);
    assert.equal((await real.flush(5_000))?.envelopesSent, 1);
    const normal = await coordinator.fetch();
    const decoy = await Volunteer.open(await NodeStorage.open(dir), DURESS);
    assert.equal((await decoy.flush(5_000))?.envelopesSent, 1);
    const duress = await coordinator.fetch();
    assert.deepEqual(
      [...normal.messages, ...duress.messages].map((m) => m.kind),
      ["checkin", "checkin"],
    );
    assert.deepEqual(
      [normal.senders[0], duress.senders[0]],
      [real.identity.signing.publicKey, real.identity.duress.publicKey],
    );
    assert.deepEqual(normal.sizes, duress.sizes);
  });

  it("remote wipe whose mailbox ack fails: the same run still erases", async () => {
    const { dir, real, dataKey } = await device("wipe-ack-lost");
    const identity = real.identity;
    await coordinator.control({
      pseudonym: identity.pseudonym,
      encryptionKey: fromBase64url(identity.encryption.publicKey) ?? new Uint8Array(),
    });
    const failAck: HttpTransport = async (request) => {
      if (request.url.endsWith("/mailbox/ack")) throw new TypeError("fetch failed");
      return fetchTransport(request);
    };
    const opened = await Volunteer.open(await NodeStorage.open(dir), PIN, { transport: failAck });
    const result = await opened.sync({ budgetMs: 200, ...noWait });
    assert.equal(result.wiped, true);
    scan(dir, { bytes: secretsOf(real, dataKey), strings: [identity.pseudonym] });
    await assertWrongPin(dir, PIN, 9);
  });

  it("remote wipe acked but the process dies before the erase: the next open sends the wipe-ack, then erases", async () => {
    const { dir, real, dataKey } = await device("wipe-killed");
    const identity = real.identity;
    const wipe = await coordinator.control({
      pseudonym: identity.pseudonym,
      encryptionKey: fromBase64url(identity.encryption.publicKey) ?? new Uint8Array(),
    });
    // The ack reaches the relay, then the run never continues (the process "was killed").
    let acked: () => void = () => undefined;
    const ackDone = new Promise<void>((resolve) => {
      acked = resolve;
    });
    const dies: HttpTransport = async (request) => {
      const response = await fetchTransport(request);
      if (!request.url.endsWith("/mailbox/ack")) return response;
      acked();
      return new Promise<never>(() => undefined);
    };
    const doomed = await Volunteer.open(await NodeStorage.open(dir), PIN, { transport: dies });
    void doomed.sync({ budgetMs: 5_000, ...noWait });
    await ackDone;
    await coordinator.fetch();
    // The relay no longer holds the wipe; the device must still erase on the next unlock, and the
    // coordinators must still get the wipe-ack (sent by that unlock before it erases).
    await assertWrongPin(dir, PIN, 9);
    scan(dir, { bytes: secretsOf(real, dataKey), strings: [identity.pseudonym] });
    const { messages, senders } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => (m.kind === "wipe-ack" ? `${m.kind}:${m.counter}` : m.kind)),
      [`wipe-ack:${wipe.counter}`],
    );
    assert.equal(senders[0], identity.signing.publicKey);
  });

  it("forged, replayed, expired and misdirected wipes erase nothing; the refused ones are reported", async () => {
    const { dir, real } = await device("refused");
    const to = {
      pseudonym: real.identity.pseudonym,
      encryptionKey: fromBase64url(real.identity.encryption.publicKey) ?? new Uint8Array(),
    };
    const notice = await coordinator.control(to, { payload: { kind: "notice", text: "stay safe", ackBy: undefined } });
    assert.equal((await real.sync({ budgetMs: 5_000, ...noWait })).controls.length, 1);
    const day = 86_400_000;
    const now = Date.now();
    await coordinator.control(to, { signer: generateSigningKeyPair() });
    await coordinator.control(to, { payload: { counter: notice.counter } });
    await coordinator.control(to, {
      payload: { counter: now - 2 * day, issuedAt: now - 2 * day, expiresAt: now - day, ackBy: now - day },
    });
    await coordinator.control(to, { payload: { to: "v-0000000000000000" } });
    const refused = await real.sync({ budgetMs: 5_000, ...noWait });
    assert.equal(refused.wiped, undefined);
    assert.deepEqual([...refused.securityNotices].sort(), ["expired-control", "forged-control", "replayed-control"]);
    // Nothing erased: the PIN still opens the same identity, and the notices reach the coordinators.
    const reopened = await Volunteer.open(await NodeStorage.open(dir), PIN);
    assert.equal(reopened.identity.pseudonym, real.identity.pseudonym);
    await reopened.sync({ budgetMs: 5_000, ...noWait });
    const reasons = (await coordinator.fetch()).messages.flatMap((m) =>
      m.kind === "security-notice" ? [m.reason] : [],
    );
    assert.deepEqual(reasons.sort(), ["expired-control", "forged-control", "replayed-control"]);
  });

  it("a duress PIN set after enrollment (and replaced) works like one set at enrollment", async () => {
    const { dir, real, dataKey } = await device("later", { duress: false });
    await real.setDuressPin("111111");
    await (await Volunteer.open(await NodeStorage.open(dir), PIN)).setDuressPin(DURESS);
    await assertWrongPin(dir, "111111", 9);
    await assert.rejects(real.setDuressPin(PIN), /the duress PIN must differ from the PIN/);
    await assertDuressUnlockAlerts(dir, real);
    scan(dir, { bytes: secretsOf(real, dataKey), strings: [real.identity.pseudonym] });
    assertNoneHolds(await openableWith(dir, DURESS), secretsOf(real, dataKey).slice(0, 3));
    await assertWrongPin(dir, PIN, 9);
  });

  it("a duress PIN set on the decoy (under coercion) makes a decoy that still syncs, signing with D", async () => {
    const { dir, real } = await device("decoy-of-decoy");
    const decoy = await Volunteer.open(await NodeStorage.open(dir), DURESS);
    // The decoy's own duress key is D too: what a real profile's would do at the relay, it does.
    assert.equal(decoy.identity.duress.publicKey, real.identity.duress.publicKey);
    assert.equal((await decoy.flush(5_000))?.envelopesSent, 1);
    await decoy.setDuressPin("975318");
    const second = await Volunteer.open(await NodeStorage.open(dir), "975318");
    assert.equal(second.identity.signing.publicKey, real.identity.duress.publicKey);
    assert.equal((await second.flush(5_000))?.envelopesSent, 1);
    await second.report("12", "all calm");
    const run = await second.sync({ budgetMs: 5_000, ...noWait });
    assert.deepEqual([run.envelopesSent, run.refused.length], [1, 0]);
    const { messages, senders } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => m.kind),
      ["checkin", "checkin", "status"],
    );
    assert.deepEqual(new Set(senders), new Set([real.identity.duress.publicKey]));
  });

  it("panic erases the device without a PIN", async () => {
    const { dir, real, dataKey } = await device("panic");
    await real.report("MARKER-TABLE-9", "MARKER-TEXT before panic");
    await panic(await NodeStorage.open(dir));
    scan(dir, { bytes: secretsOf(real, dataKey), strings: ["MARKER", real.identity.pseudonym] });
    assert.deepEqual(readdirSync(dir), [KEY_SLOT_FILE]);
    await assertWrongPin(dir, PIN, 9);
  });

  it("the wrong-PIN limit (set at enrollment) erases the device", async () => {
    const { dir, real, dataKey } = await device("limit", { maxFailedUnlocks: 3 });
    await assertWrongPin(dir, "000000", 2);
    await assertWrongPin(dir, "000001", 1);
    await assertWrongPin(dir, "000002", 0);
    scan(dir, { bytes: secretsOf(real, dataKey), strings: [real.identity.pseudonym] });
    await assertWrongPin(dir, PIN, 2);
    await assertWrongPin(dir, DURESS, 1);
  });

  it("sync queues a check-in once the interval has passed; `checkin` queues one now", async () => {
    const { real } = await device("checkin", { duress: false, checkin: 1 });
    const idle = await device("checkin-idle", { duress: false });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await real.sync({ budgetMs: 5_000, ...noWait });
    await idle.real.sync({ budgetMs: 5_000, ...noWait });
    await idle.real.checkin();
    await idle.real.sync({ budgetMs: 5_000, ...noWait });
    const { messages } = await coordinator.fetch();
    assert.deepEqual(
      messages.map((m) => m.kind),
      ["checkin", "checkin"],
    );
  });
});
