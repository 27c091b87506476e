// Issue 5, remote wipe through the real relay and the `testigo` command: bad wipes (forged,
// replayed, expired, future-dated, misdirected, bit-flipped; fast-check, seeded and printed) are
// posted by a coordinator device to the volunteer's real mailbox, and `testigo volunteer sync`
// reads them. None may be accepted: the command succeeds as usual, the device folder keeps every
// file, key slot and record (the sync log, the epoch keys and reports the device itself queues —
// security notices, check-ins — aside), and the real PIN still opens it. Truncated and extended
// messages are not here: the relay refuses to store a control message that is not 1,024 bytes
// (they are in wipe-mutations.test.ts, served by a hostile relay).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { CoordinatorDevice } from "@testigo/client-sdk";
import { initSodium } from "@testigo/protocol";
import fc from "fast-check";
import { type CoordinatorDevice as CoordinatorFolder, fetchAll, readReports } from "../helpers/campaign.js";
import { type LoggedRelay, startLoggedRelay } from "../helpers/relay.js";
import { type BadWipe, badWipe, buildWipe, type WipeContext } from "./bad-wipes.js";
import { type DeviceSnapshot, diffSnapshots, folderFiles, snapshotDevice } from "./device-state.js";
import { type Volunteer5, volunteerCli } from "./fixture.js";
import { wipeTarget } from "./wipe-target.js";

const RUNS = Number(process.env.WIPE_CLI_RUNS ?? 30);
const SEED = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 0x7fffffff));
/** Reports a sync may queue by itself: a security notice for a refused control message, a check-in when due. */
const SELF_QUEUED: ReadonlySet<string> = new Set(["security-notice", "checkin"]);
/** Refused wipes that were encrypted to the phone: each one is reported (spec §2.3). */
const REPORTABLE: ReadonlySet<string> = new Set(["outsider", "impostor", "replayed", "expired", "future"]);

describe("remote wipe: bad wipes in the real mailbox, read by `testigo volunteer sync`, erase nothing", () => {
  let work: string;
  let relay: LoggedRelay;
  let phone: Volunteer5;
  let ctx: WipeContext;
  let poster: CoordinatorDevice;
  let baseline: DeviceSnapshot;
  let coordinator: CoordinatorFolder;

  before(async () => {
    await initSodium();
    work = mkdtempSync(join(tmpdir(), "testigo-issue5-wipes-cli-"));
    relay = await startLoggedRelay();
    const target = await wipeTarget(work, relay);
    ({ phone, coordinator, ctx } = target);
    poster = target.devices[0];
    const counters = target.counters;
    const synced = await volunteerCli("sync", phone, phone.pinFile, ["--json"]);
    assert.equal(synced.code, 0, synced.stderr);
    baseline = await snapshotDevice(folderFiles(phone.dir), phone.pin);
    const mailbox = JSON.parse(baseline.profile?.records.get("mailbox")?.toString("utf8") ?? "{}") as {
      lastCounters?: Record<string, number>;
    };
    assert.deepEqual(
      ctx.signers.map((s) => mailbox.lastCounters?.[s.deviceId]),
      counters,
      "the device accepted the baseline notice of each roster device",
    );
  });

  after(async () => {
    await relay?.remove();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it(`refuses ${RUNS} bad wipes from the real mailbox (seed ${SEED})`, async () => {
    console.log(`fast-check seed ${SEED} (replay with FC_SEED=${SEED}), ${RUNS} runs`);
    const key = baseline.profile;
    if (key === undefined) throw new Error("the real PIN opens the phone");
    const seen = new Map<string, number>();
    let reportable = 0;
    await fc.assert(
      fc.asyncProperty(badWipe(ctx.signers.length, { sameSize: true }), async (spec: BadWipe) => {
        seen.set(spec.case, (seen.get(spec.case) ?? 0) + 1);
        if (REPORTABLE.has(spec.case)) reportable++;
        await poster.client.putMailbox(phone.pseudonym, buildWipe(ctx, spec));
        const run = await volunteerCli("sync", phone, phone.pinFile, ["--json"]);
        assert.equal(run.code, 0, `sync exited ${run.code}: ${run.stderr}`);
        assert.equal((JSON.parse(run.stdout) as { ok: boolean }).ok, true);
        const now = await snapshotDevice(folderFiles(phone.dir), key);
        assert.deepEqual(diffSnapshots(baseline, now, { mayQueue: SELF_QUEUED }).problems, []);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`cases: ${JSON.stringify(Object.fromEntries(seen))}`);
    // Every refused wipe that was encrypted to this phone reached the coordinators as a security
    // notice from its pseudonym (the last one queued is sent by one more sync).
    const flush = await volunteerCli("sync", phone, phone.pinFile);
    assert.equal(flush.code, 0, flush.stderr);
    const out = join(work, "out");
    await fetchAll(coordinator, out);
    const notices = readReports(out).filter((r) => r.kind === "security-notice");
    assert.deepEqual(
      [...new Set(notices.map((r) => r.volunteer))],
      reportable === 0 ? [] : [phone.pseudonym],
      "security notices come from the phone",
    );
    assert.equal(notices.length, reportable, "one security notice per refused wipe that was encrypted to the phone");
    // The real PIN still opens the device (argon2id), through the command and directly.
    const unlock = await volunteerCli("unlock", phone, phone.pinFile);
    assert.equal(unlock.code, 0, unlock.stderr);
    assert.equal(unlock.stdout, "unlocked\n");
    const last = await snapshotDevice(folderFiles(phone.dir), phone.pin);
    assert.deepEqual(diffSnapshots(baseline, last, { mayQueue: SELF_QUEUED }).problems, []);
  });
});
