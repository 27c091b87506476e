// Issue 5, wire indistinguishability (DESIGN §2 A1, §3.5): what the relay receives for N status
// reports (`testigo volunteer report`, texts of 1 to 500 characters), N check-ins (`testigo
// volunteer checkin`) and N duress reports (`testigo volunteer unlock` with the duress PIN) is
// captured by a loopback proxy between the command and a real relay process: method, route
// pattern, request headers (names and values, the bearer token's value masked), body size,
// response status, response headers (the date masked) and response size. The three
// distributions must be identical, request by request and command by command (the same requests
// in the same order). The coordinators then receive the N reports of each kind.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initSodium } from "@testigo/protocol";
import { type CoordinatorDevice, fetchAll, initCoordinator, invite, readReports } from "../helpers/campaign.js";
import type { CliRun } from "../helpers/cli.js";
import { type LoggedRelay, startLoggedRelay } from "../helpers/relay.js";
import { type CapturedRequest, type CaptureProxy, startCaptureProxy } from "./capture-proxy.js";
import { enrollSdkPhone, volunteerCli } from "./fixture.js";

const N = Number(process.env.WIRE_N ?? 50);
/** Commands run at once (each a separate process on its own connection). */
const LANES = 3;
const ENVELOPES = "POST /v1/campaigns/:campaignId/envelopes";

interface Phone {
  readonly dir: string;
  readonly pseudonym: string;
  readonly pinFile: string;
  readonly duressPinFile: string;
}

type Feature = Omit<CapturedRequest, "connection" | "actor">;

function feature(request: CapturedRequest): string {
  const { connection: _c, actor: _a, ...rest } = request;
  return JSON.stringify(rest satisfies Feature);
}

/** Runs `command(phone)` for every phone, LANES at a time; returns the runs in phone order. */
async function inLanes(phones: readonly Phone[], command: (phone: Phone) => Promise<CliRun>): Promise<CliRun[]> {
  const runs: CliRun[] = new Array(phones.length);
  let next = 0;
  const lane = async () => {
    while (next < phones.length) {
      const index = next++;
      runs[index] = await command(phones[index] as Phone);
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  return runs;
}

interface Phase {
  /** Every request's features, sorted. */
  readonly requests: string[];
  /**
   * Every command's requests (those of one phone's session: each phone runs one command per
   * phase), as its sorted routes — the SDK reads the roster and epoch keys concurrently, so the
   * order within a command is not fixed — plus the anonymous requests of the phase.
   */
  readonly commands: string[];
  readonly anonymous: string[];
  readonly envelopeSizes: Set<number>;
}

function phase(captured: readonly CapturedRequest[]): Phase {
  const byActor = new Map<string, string[]>();
  const anonymous: string[] = [];
  for (const request of captured) {
    if (request.actor === undefined) {
      anonymous.push(request.route);
      continue;
    }
    const list = byActor.get(request.actor) ?? [];
    list.push(request.route);
    byActor.set(request.actor, list);
  }
  return {
    requests: captured.map(feature).sort(),
    commands: [...byActor.values()].map((list) => list.sort().join(" + ")).sort(),
    anonymous: anonymous.sort(),
    envelopeSizes: new Set(captured.filter((r) => r.route === ENVELOPES).map((r) => r.bodySize)),
  };
}

function summary(p: Phase): string {
  const counts = new Map<string, number>();
  for (const command of p.commands) counts.set(command, (counts.get(command) ?? 0) + 1);
  const anonymous = new Map<string, number>();
  for (const route of p.anonymous) anonymous.set(route, (anonymous.get(route) ?? 0) + 1);
  return [
    ...[...counts].map(([c, n]) => `${n}× ${c}`),
    ...[...anonymous].map(([r, n]) => `${n}× ${r} (anonymous)`),
  ].join("\n");
}

describe(`wire indistinguishability: ${N} status reports, ${N} check-ins and ${N} duress reports`, () => {
  let work: string;
  let relay: LoggedRelay;
  let proxy: CaptureProxy;
  let coordinator: CoordinatorDevice;
  let phones: Phone[];
  const phases = new Map<string, Phase>();

  before(async () => {
    await initSodium();
    work = mkdtempSync(join(tmpdir(), "testigo-issue5-wire-"));
    // Generous rate limits: every command comes from 127.0.0.1 through the proxy, in quick succession.
    relay = await startLoggedRelay({
      env: { TESTIGO_RATE_CAPACITY: "1000000", TESTIGO_RATE_REFILL_PER_SECOND: "1000000" },
    });
    proxy = await startCaptureProxy(relay.url);
    // The coordinator registers the proxy's address: the invites, and so the phones, use it.
    coordinator = await initCoordinator(work, "coord", proxy.url, relay.token);
    const codes = await invite(coordinator, N);
    // Each phone with a PIN and a duress PIN, its `enrolled` report already sent, so the phases
    // below carry one report each.
    phones = [];
    for (const [i, code] of codes.entries()) phones.push(await enrollSdkPhone(work, `phone-${i}`, code));
    proxy.take();
  });

  after(async () => {
    await proxy?.close();
    await relay?.remove();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it(`captures ${N} status reports (texts of 1 to 500 characters)`, async () => {
    const runs = await inLanes(phones, (phone) => {
      const text = randomBytes(250)
        .toString("hex")
        .slice(0, 1 + Math.floor(Math.random() * 500));
      return volunteerCli("report", phone, phone.pinFile, ["--table", "T-1", "--text", text]);
    });
    for (const run of runs) assert.deepEqual([run.code, run.stdout], [0, "sent\n"], run.stderr);
    phases.set("status", phase(proxy.take()));
  });

  it(`captures ${N} check-ins`, async () => {
    const runs = await inLanes(phones, (phone) => volunteerCli("checkin", phone, phone.pinFile));
    for (const run of runs) assert.deepEqual([run.code, run.stdout], [0, "sent\n"], run.stderr);
    phases.set("checkin", phase(proxy.take()));
  });

  it(`captures ${N} duress reports (volunteer unlock with the duress PIN)`, async () => {
    const runs = await inLanes(phones, (phone) => volunteerCli("unlock", phone, phone.duressPinFile));
    for (const run of runs) assert.deepEqual([run.code, run.stdout], [0, "unlocked\n"], run.stderr);
    phases.set("duress", phase(proxy.take()));
  });

  it("sees identical distributions of routes, headers, body sizes, statuses and response sizes", () => {
    const status = phases.get("status");
    const checkin = phases.get("checkin");
    const duress = phases.get("duress");
    if (status === undefined || checkin === undefined || duress === undefined) {
      throw new Error("a capture phase failed (see above)");
    }
    console.log(`status commands on the wire:\n${summary(status)}`);
    console.log(`duress commands on the wire:\n${summary(duress)}`);
    assert.equal(status.commands.length, N, `one session per status command:\n${summary(status)}`);
    assert.equal(status.envelopeSizes.size, 1, `one envelope size for every status text: ${[...status.envelopeSizes]}`);
    assert.deepEqual(checkin.requests, status.requests, "check-ins and status reports: the same requests");
    assert.deepEqual(duress.requests, status.requests, "duress and status reports: the same requests");
    assert.deepEqual(checkin.commands, status.commands, "check-ins and status reports: sent the same way");
    assert.deepEqual(duress.commands, status.commands, "duress and status reports: sent the same way");
    assert.deepEqual(checkin.anonymous, status.anonymous, "check-ins and status reports: the same anonymous reads");
    assert.deepEqual(duress.anonymous, status.anonymous, "duress and status reports: the same anonymous reads");
  });

  it("delivers every status report, check-in and duress report to the coordinator", async () => {
    const out = join(work, "out");
    await fetchAll(coordinator, out);
    const reports = readReports(out);
    for (const kind of ["status", "checkin", "duress"]) {
      const from = reports.filter((r) => r.kind === kind).map((r) => r.volunteer);
      assert.deepEqual(
        from.sort(),
        phones.map((p) => p.pseudonym).sort(),
        `one ${kind} report from each phone's real pseudonym`,
      );
    }
  });
});
