// Issue 5, remote wipe: 10,000 mutated, forged, replayed, expired, future-dated and misdirected
// wipe messages (fast-check, seeded; the seed is printed and FC_SEED=… replays a run) reach a
// real volunteer device — enrolled through the `testigo` command against a real relay process,
// with a report and an acta kept on it — through the SDK's own sync (Volunteer.sync) and a hostile
// relay: the real relay's recorded answers, with the bad wipe planted in a mailbox slot. None may
// be accepted and nothing may change on the device but the sync bookkeeping: same files, same key
// slots, same plaintext in every record; at the end the real PIN still opens the profile.
// A valid wipe through the same path is the positive control: it IS accepted.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MemoryStorage, volunteer as sdk } from "@testigo/client-sdk";
import { CONTROL_MESSAGE_BYTES, controlSignersOf, DecryptionFailed, initSodium, openControl } from "@testigo/protocol";
import fc from "fast-check";
import { testigoOk } from "../helpers/cli.js";
import { type LoggedRelay, startLoggedRelay } from "../helpers/relay.js";
import { type BadWipe, badWipe, buildWipe, type WipeContext } from "./bad-wipes.js";
import { diffSnapshots, snapshotDevice, storageFiles } from "./device-state.js";
import { bytes, type Volunteer5 } from "./fixture.js";
import { hostileRelay } from "./hostile-relay.js";
import { wipeTarget } from "./wipe-target.js";

/** Bad wipes through the device's control-message check (the step the mailbox reader runs on every slot). */
const RUNS = Number(process.env.WIPE_RUNS ?? 10_000);
/** Bad wipes through a whole Volunteer.sync each (roster, epoch keys, mailbox, store), with the device compared after each. */
const SYNC_RUNS = Number(process.env.WIPE_SYNC_RUNS ?? 400);
const SEED = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 0x7fffffff));
const SYNC_BUDGET_MS = 30_000;
/** Reports a sync may queue by itself: a security notice for a refused control message (spec §2.3), a check-in when due. */
const NOTICE: ReadonlySet<string> = new Set(["security-notice", "checkin"]);
/** The security notices a device queues for each case (spec §2.3 and client-sdk control-refusal.ts). */
const EXPECTED_REASONS: Readonly<Record<BadWipe["case"], readonly (readonly string[])[]>> = {
  valid: [[]],
  mutated: [[]],
  "other-target": [[]],
  "other-device": [[]],
  "other-campaign": [[]],
  outsider: [["forged-control"]],
  impostor: [["forged-control"]],
  future: [["forged-control"]],
  replayed: [["replayed-control"]],
  // A genuinely signed but expired wipe; the generator gives it a current counter, which makes it
  // look forged when judged at its own expiry more than an hour ago: either reason is a report.
  expired: [["expired-control"], ["forged-control"]],
};
const CASES = [
  "mutated",
  "outsider",
  "impostor",
  "replayed",
  "expired",
  "future",
  "other-target",
  "other-device",
  "other-campaign",
] as const;

describe("remote wipe: forged, replayed, expired, misdirected and mutated wipes are refused (SDK sync, hostile relay)", () => {
  let work: string;
  let relay: LoggedRelay;
  let phone: Volunteer5;
  let ctx: WipeContext;

  before(async () => {
    await initSodium();
    work = mkdtempSync(join(tmpdir(), "testigo-issue5-wipes-"));
    relay = await startLoggedRelay();
    const target = await wipeTarget(work, relay);
    phone = target.phone;
    ctx = target.ctx;
    await testigoOk(["volunteer", "sync", "--dir", phone.dir, "--pin-file", phone.pinFile]);
    const status = JSON.parse(
      (await testigoOk(["volunteer", "status", "--dir", phone.dir, "--pin-file", phone.pinFile, "--json"])).stdout,
    ) as { notices: number };
    assert.equal(status.notices, 2, "the device accepted both baseline notices");
  });

  after(async () => {
    await relay?.remove();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  /** A copy of the phone's folder in memory, opened with the real PIN through a hostile relay. */
  async function hostilePhone() {
    const storage = new MemoryStorage();
    for (const name of readdirSync(phone.dir)) {
      await storage.write(name, new Uint8Array(readFileSync(join(phone.dir, name))));
    }
    const hostile = hostileRelay();
    const device = await sdk.Volunteer.open(storage, phone.pin, { transport: hostile.transport });
    // One real sync records the relay's answers (the mailbox is empty: four filler slots).
    const warmUp = await device.sync({ budgetMs: SYNC_BUDGET_MS });
    assert.equal(warmUp.unreachable, undefined);
    hostile.arm();
    const baseline = new Map<string, Uint8Array>();
    for (const name of await storage.list("")) baseline.set(name, (await storage.read(name)) as Uint8Array);
    const snapshot = await snapshotDevice(storageFiles(storage), phone.pin);
    assert.ok(snapshot.profile !== undefined, "the real PIN opens the copy");
    const restore = async () => {
      for (const name of await storage.list("")) if (!baseline.has(name)) await storage.delete(name);
      for (const [name, content] of baseline) await storage.write(name, content);
    };
    return { storage, hostile, device, snapshot, restore };
  }

  it("accepts a valid wipe through the same path (positive control)", async () => {
    const { hostile, device } = await hostilePhone();
    hostile.plant(buildWipe(ctx, { case: "valid", signer: 0, counterStep: 5 }), 2);
    const result = await device.sync({ budgetMs: SYNC_BUDGET_MS });
    assert.equal(
      result.wipe?.kind,
      "wipe",
      "the device accepts a wipe signed by a roster device, fresh and aimed at it",
    );
  });

  it(`refuses ${RUNS} bad wipes at the device's control-message check (seed ${SEED})`, async () => {
    console.log(`fast-check seed ${SEED} (replay with FC_SEED=${SEED}), ${RUNS} runs`);
    const { device } = await hostilePhone();
    // The inputs exactly as the device's mailbox reader builds them from its store (sync.ts).
    const identity = await device.store.identity();
    const roster = await device.store.roster(bytes(identity.rootFingerprint));
    assert.ok(roster !== undefined, "the device holds a verified roster");
    const mailbox = await device.store.mailbox();
    const lastCounters = new Map(Object.entries(mailbox.lastCounters ?? {}));
    assert.deepEqual(
      ctx.signers.map((s) => lastCounters.get(s.deviceId)),
      ctx.signers.map((s) => s.lastCounter),
      "the device recorded the baseline notices' counters per roster device",
    );
    const signers = controlSignersOf(roster);
    assert.equal(signers.size, 2, "two roster devices");
    const input = () => ({
      campaignId: identity.campaignId,
      me: { pseudonym: identity.pseudonym, encryption: sdk.deviceKeysOf(identity).encryption },
      signers,
      lastCounterOf: (id: string) => lastCounters.get(id) ?? 0,
      now: Date.now(),
    });
    // Positive control: the same check opens a valid wipe from either roster device.
    for (const signer of [0, 1]) {
      const opened = openControl(buildWipe(ctx, { case: "valid", signer, counterStep: 3 }), input());
      assert.equal(opened.payload.kind, "wipe");
    }
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(badWipe(ctx.signers.length), (spec: BadWipe) => {
        seen.set(spec.case, (seen.get(spec.case) ?? 0) + 1);
        const message = buildWipe(ctx, spec);
        assert.throws(() => openControl(message, input()), DecryptionFailed);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`cases: ${JSON.stringify(Object.fromEntries(seen))}`);
    for (const name of CASES) assert.ok((seen.get(name) ?? 0) > 0, `the run covered ${name} wipes`);
  });

  it(`refuses ${SYNC_RUNS} bad wipes in whole syncs and changes nothing but the sync bookkeeping (seed ${SEED})`, async () => {
    const { hostile, device, storage, snapshot, restore } = await hostilePhone();
    const key = snapshot.profile;
    if (key === undefined) throw new Error("the real PIN opens the copy");
    const seen = new Map<string, number>();
    const queued = new Map<string, number>();
    let schemaRefusals = 0;
    await fc.assert(
      fc.asyncProperty(badWipe(ctx.signers.length), fc.nat({ max: 3 }), async (spec: BadWipe, slot: number) => {
        seen.set(spec.case, (seen.get(spec.case) ?? 0) + 1);
        await restore();
        const message = buildWipe(ctx, spec);
        hostile.plant(message, slot);
        try {
          const result = await device.sync({ budgetMs: SYNC_BUDGET_MS });
          assert.equal(result.wipe, undefined, "the wipe was accepted");
          assert.deepEqual(result.controls, [], "a control message was accepted");
        } catch (error) {
          // A slot that is not 1,024 bytes breaks the mailbox answer's schema: the device refuses
          // the whole answer (RELAY_PROTOCOL_ERROR). Anything else is a failure.
          if (
            message.length === CONTROL_MESSAGE_BYTES ||
            (error as { code?: string }).code !== "RELAY_PROTOCOL_ERROR"
          ) {
            throw error;
          }
          schemaRefusals++;
        }
        const now = await snapshotDevice(storageFiles(storage), key);
        const diff = diffSnapshots(snapshot, now, { mayQueue: NOTICE });
        assert.deepEqual(diff.problems, []);
        // A refused message that was encrypted to this device is reported (spec §2.3), once;
        // one that was not (filler, another target or campaign, a broken ciphertext) is not.
        const notices = diff.queued.filter((q) => q.kind === "security-notice");
        queued.set(spec.case, (queued.get(spec.case) ?? 0) + notices.length);
        const reasons = notices.map((q) => q.reason);
        if (message.length !== CONTROL_MESSAGE_BYTES) assert.deepEqual(reasons, []);
        else
          assert.ok(
            EXPECTED_REASONS[spec.case].some((r) => JSON.stringify(r) === JSON.stringify(reasons)),
            `security notices ${JSON.stringify(reasons)} for a ${spec.case} wipe`,
          );
      }),
      { numRuns: SYNC_RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`whole syncs: ${JSON.stringify(Object.fromEntries(seen))}`);
    console.log(`security notices queued: ${JSON.stringify(Object.fromEntries(queued))}`);
    console.log(`mailbox answers refused as a whole (a slot not ${CONTROL_MESSAGE_BYTES} bytes): ${schemaRefusals}`);
    // The real PIN (argon2id, not the remembered key) still opens the same profile.
    hostile.plant(undefined);
    const last = await snapshotDevice(storageFiles(storage), phone.pin);
    assert.deepEqual(diffSnapshots(snapshot, last, { mayQueue: NOTICE }).problems, []);
  });
});
