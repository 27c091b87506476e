// `testigo coordinator volunteers` and `wipe --revoke-after` as a coordinator runs them: the
// real bin in child processes against a real relay process. Duress is loud (first row, a
// DURESS line on stderr), silence is a column and a JSON field, a wipe deadline is shown.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initSodium } from "@testigo/protocol";
import { TestVolunteer } from "../../coordinator/node-test-volunteer.js";
import { type RelayProcess, startRelay } from "../../testing/relay-process.js";
import { runCli } from "./coordinator-test-cli.js";

const run = runCli;

describe("testigo coordinator volunteers / wipe --revoke-after (CLI, real relay process)", () => {
  let relay: RelayProcess;
  const work = mkdtempSync(join(tmpdir(), "testigo-cli-volunteers-"));
  const dir = join(work, "device");
  let calm: TestVolunteer;
  let coerced: TestVolunteer;

  before(async () => {
    await initSodium();
    relay = await startRelay();
    const init = await run(["coordinator", "init", "--dir", dir, "--relay", relay.url, "--json"], {
      TESTIGO_RELAY_TOKEN: relay.token,
    });
    assert.equal(init.code, 0, init.stderr);
    const { campaignId } = JSON.parse(init.stdout) as { campaignId: string };
    const invites = await run(["coordinator", "invite", "--dir", dir, "--count", "2"]);
    const [a = "", b = ""] = invites.stdout.trim().split("\n");
    calm = await TestVolunteer.enroll(a, campaignId);
    coerced = await TestVolunteer.enroll(b, campaignId);
    await calm.status("0", "", "checkin");
    await coerced.status("12.1", "all calm", "duress");
    const fetched = await run(["coordinator", "fetch", "--dir", dir, "--out", join(work, "out")]);
    assert.equal(fetched.code, 0, fetched.stderr);
  });
  after(async () => {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("makes duress loud in the table and on stderr, and lists it first", async () => {
    const listed = await run(["coordinator", "volunteers", "--dir", dir]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stderr, new RegExp(`DURESS: 1 volunteer\\(s\\) signalled duress: ${coerced.pseudonym}`));
    const [header = "", first = ""] = listed.stdout.split("\n");
    assert.match(header, /duress\s+silent/);
    assert.ok(first.startsWith(coerced.pseudonym), "the duress volunteer is the first row");
    assert.match(first, /!! DURESS !!/);
  });

  it("reports silent volunteers in --json and the table, with --silent-after", async () => {
    const json = await run(["coordinator", "volunteers", "--dir", dir, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const views = JSON.parse(json.stdout) as { pseudonym: string; silent: boolean; lastCheckin: string | null }[];
    const calmView = views.find((v) => v.pseudonym === calm.pseudonym);
    assert.equal(calmView?.silent, false, "just checked in");
    assert.ok(calmView?.lastCheckin);
    // Everything arrived seconds ago: with a 1-second interval, wait past it and all are silent.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const strict = await run(["coordinator", "volunteers", "--dir", dir, "--silent-after", "1s", "--json"]);
    const strictViews = JSON.parse(strict.stdout) as { pseudonym: string; silent: boolean }[];
    assert.ok(strictViews.every((v) => v.silent));
    const table = await run(["coordinator", "volunteers", "--dir", dir, "--silent-after", "1s"]);
    assert.match(table.stderr, /SILENT: 2 volunteer\(s\)/);
    const bad = await run(["coordinator", "volunteers", "--dir", dir, "--silent-after", "soon"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--silent-after must be a duration/);
  });

  it("wipe --revoke-after sets the deadline the next fetch enforces", async () => {
    const wiped = await run(["coordinator", "wipe", "--dir", dir, calm.pseudonym, "--revoke-after", "1s", "--json"]);
    assert.equal(wiped.code, 0, wiped.stderr);
    const result = JSON.parse(wiped.stdout) as { revokeAt: string; expiresAt: string };
    assert.ok(Date.parse(result.revokeAt) < Date.parse(result.expiresAt));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const fetched = await run(["coordinator", "fetch", "--dir", dir, "--out", join(work, "out"), "--json"]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal((JSON.parse(fetched.stdout) as { revoked: number }).revoked, 1);
    const views = JSON.parse((await run(["coordinator", "volunteers", "--dir", dir, "--json"])).stdout) as {
      pseudonym: string;
      revoked: boolean | null;
    }[];
    assert.equal(views.find((v) => v.pseudonym === calm.pseudonym)?.revoked, true);
    await assert.rejects(calm.status("1", "after the deadline"));
  });
});
