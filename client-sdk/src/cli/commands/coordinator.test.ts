// `testigo coordinator …` as a person or a script runs it: the real bin in child processes, a
// real relay process, the default (production) argon2id cost.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initSodium } from "@testigo/protocol";
import { TestVolunteer } from "../../coordinator/node-test-volunteer.js";
import { actaPhotos } from "../../testing/acta-photos.js";
import { type RelayProcess, startRelay } from "../../testing/relay-process.js";
import { runCli, startCli, TEST_PASSPHRASE } from "./coordinator-test-cli.js";

/** Many requests from one address in a short test: lift the relay's per-credential rate limit. */
const RELAY_ENV = { TESTIGO_RATE_CAPACITY: "1000000", TESTIGO_RATE_REFILL_PER_SECOND: "1000000" };
const start = startCli;
const run = runCli;

function readReports(out: string): { id: string; kind: string; photos?: { path: string; sha256: string }[] }[] {
  const text = readFileSync(join(out, "reports.jsonl"), "utf8");
  assert.ok(text.endsWith("\n"), "reports.jsonl ends with a complete line");
  return text
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line));
}

describe("testigo coordinator (CLI, real relay process)", () => {
  let relay: RelayProcess;
  let dir: string;
  let campaignId: string;
  const work = mkdtempSync(join(tmpdir(), "testigo-cli-"));

  before(async () => {
    await initSodium();
    relay = await startRelay({ env: RELAY_ENV });
    dir = join(work, "device");
    const init = await run(["coordinator", "init", "--dir", dir, "--relay", relay.url, "--json"], {
      TESTIGO_RELAY_TOKEN: relay.token,
    });
    assert.equal(init.code, 0, init.stderr);
    const result = JSON.parse(init.stdout);
    assert.equal(result.ok, true);
    assert.match(result.fingerprint, /^([0-9A-Z]{4} ){6}[0-9A-Z]{2}$/);
    campaignId = result.campaignId;
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  it("documents every command with --help", async () => {
    for (const name of ["init", "invite", "fetch", "volunteers", "wipe"]) {
      const result = await run(["coordinator", name, "--help"]);
      assert.equal(result.code, 0);
      assert.match(result.stdout, new RegExp(`^usage: testigo coordinator ${name} --dir DIR`));
    }
  });

  it("refuses a wrong passphrase (exit 5), a missing device (exit 6) and a secret flag (exit 2)", async () => {
    const wrong = await run(["coordinator", "invite", "--dir", dir, "--json"], {
      TESTIGO_PASSPHRASE: "not the passphrase",
    });
    assert.equal(wrong.code, 5);
    assert.deepEqual(JSON.parse(wrong.stdout).error.code, "WRONG_PASSPHRASE");
    const missing = await run(["coordinator", "invite", "--dir", join(work, "nothing")]);
    assert.equal(missing.code, 6);
    assert.match(missing.stderr, /coordinator init/);
    const secret = await run(["coordinator", "init", "--dir", dir, "--relay", relay.url, "--passphrase", "x"]);
    assert.equal(secret.code, 2);
    const noToken = await run(["coordinator", "init", "--dir", join(work, "other"), "--relay", relay.url]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /TESTIGO_RELAY_TOKEN/);
  });

  it("survives kill -9 of fetch at random points (x20): reports.jsonl ends complete, without duplicates", async () => {
    const invites = await run(["coordinator", "invite", "--dir", dir, "--count", "3", "--label", "centre 7"]);
    assert.equal(invites.code, 0, invites.stderr);
    const codes = invites.stdout.trim().split("\n");
    assert.equal(codes.length, 3);
    const volunteers = await Promise.all(codes.map((code) => TestVolunteer.enroll(code, campaignId)));
    const expected = new Set<string>();
    const photos = actaPhotos(3).map((p) => p.bytes);
    const send = async (round: number) => {
      for (const [i, v] of volunteers.entries()) {
        for (let k = 0; k < 4; k++) expected.add(await v.status(`${round}.${i}`, `round ${round} report ${k}`));
      }
      const photo = photos[round % photos.length] as Uint8Array;
      expected.add(
        await (volunteers[round % volunteers.length] as TestVolunteer).acta(`${round}`, [photo], {
          actaFirst: round % 2 === 0,
        }),
      );
    };
    const out = join(work, "out");
    const lineCount = () => {
      try {
        return readFileSync(join(out, "reports.jsonl"), "utf8").split("\n").length - 1;
      } catch {
        return 0;
      }
    };
    let interruptedMidway = 0;
    for (let round = 0; round < 20; round++) {
      await send(round);
      const child = start(["coordinator", "fetch", "--dir", dir, "--out", out, "--batch", "3"]);
      // Even rounds: anywhere from before the unlock (Node start-up plus the default argon2id
      // take ~0.7 s) to well into the writing. Odd rounds: just after reports.jsonl grew, so
      // some kills surely land between writing lines and acking them.
      let exited = false;
      child.on("exit", () => {
        exited = true;
      });
      // Listened for now: a fetch that ends on its own may close before the kill below.
      const closed = new Promise((resolve) => child.on("close", resolve));
      if (round % 2 === 0) {
        await new Promise((resolve) => setTimeout(resolve, 100 + Math.floor(Math.random() * 1400)));
      } else {
        const before = lineCount();
        while (!exited && lineCount() === before) await new Promise((resolve) => setTimeout(resolve, 5));
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 40)));
      }
      child.kill("SIGKILL");
      await closed;
      const lines = lineCount();
      if (lines > 0 && lines < expected.size + 3) interruptedMidway++;
    }
    // The kills did land while fetch was writing, not only before or after it.
    assert.ok(interruptedMidway > 0, "some kills interrupted a fetch in progress");
    const final = await run(["coordinator", "fetch", "--dir", dir, "--out", out, "--json"]);
    assert.equal(final.code, 0, final.stderr);
    const summary = JSON.parse(final.stdout);
    assert.equal(summary.waitingForPhotos, 0);
    assert.equal(summary.quarantined, 0);

    const reports = readReports(out);
    const ids = reports.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, "no duplicate lines");
    for (const id of expected) assert.ok(ids.includes(id), `report ${id} is in reports.jsonl`);
    assert.equal(reports.filter((r) => r.kind === "enrolled").length, 3);
    assert.equal(ids.length, expected.size + 3);
    for (const acta of reports.filter((r) => r.kind === "acta")) {
      for (const photo of acta.photos ?? []) {
        const bytes = readFileSync(join(out, photo.path));
        assert.equal(createHash("sha256").update(bytes).digest("hex"), photo.sha256);
        assert.ok(
          photos.some((p) => bytes.equals(p)),
          "byte-identical to a photo the volunteer took",
        );
      }
    }

    const listed = await run(["coordinator", "volunteers", "--dir", dir, "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const views = JSON.parse(listed.stdout) as {
      pseudonym: string;
      inviteLabel: string;
      revoked: boolean;
      counts: Record<string, number>;
    }[];
    assert.equal(views.length, 3);
    for (const view of views) {
      assert.equal(view.inviteLabel, "centre 7");
      assert.equal(view.revoked, false);
    }

    const target = volunteers[0] as TestVolunteer;
    const wipe = await run(["coordinator", "wipe", "--dir", dir, target.pseudonym, "--json"]);
    assert.equal(wipe.code, 0, wipe.stderr);
    assert.equal(JSON.parse(wipe.stdout).pseudonym, target.pseudonym);
    const afterWipe = JSON.parse(
      (await run(["coordinator", "volunteers", "--dir", dir, "--json", "--offline"])).stdout,
    );
    assert.equal(afterWipe.find((v: { pseudonym: string }) => v.pseudonym === target.pseudonym).wipe, "requested");
  });

  it("adds a second device with join, add-device and join --bundle", async () => {
    const d2 = join(work, "second-device");
    const request = await run(["coordinator", "join", "--dir", d2, "--relay", relay.url, "--label", "laptop B"]);
    assert.equal(request.code, 0, request.stderr);
    writeFileSync(join(work, "request"), request.stdout);
    const bundle = join(work, "bundle");
    const added = await run([
      "coordinator",
      "add-device",
      "--dir",
      dir,
      "--request",
      join(work, "request"),
      "--out",
      bundle,
      "--json",
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(JSON.parse(added.stdout).rosterSerial, 2);
    const joined = await run(["coordinator", "join", "--dir", d2, "--bundle", bundle, "--json"]);
    assert.equal(joined.code, 0, joined.stderr);
    assert.equal(JSON.parse(joined.stdout).campaignId, campaignId);
    const fetched = await run(["coordinator", "fetch", "--dir", d2, "--out", join(work, "out2"), "--json"]);
    assert.equal(fetched.code, 0, fetched.stderr);
  });

  it("reads the passphrase from --passphrase-file and the relay token from --relay-token-file", async () => {
    const pass = join(work, "pass");
    const token = join(work, "token");
    writeFileSync(pass, `${TEST_PASSPHRASE}\n`);
    writeFileSync(token, `${relay.token}\n`);
    const second = join(work, "second");
    const init = await run(
      [
        "coordinator",
        "init",
        "--dir",
        second,
        "--relay",
        relay.url,
        "--passphrase-file",
        pass,
        "--relay-token-file",
        token,
      ],
      {
        TESTIGO_PASSPHRASE: "",
      },
    );
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /^campaign [A-Za-z0-9_-]{22}\nroot fingerprint: /);
    const again = await run([
      "coordinator",
      "init",
      "--dir",
      second,
      "--relay",
      relay.url,
      "--passphrase-file",
      pass,
      "--relay-token-file",
      token,
    ]);
    assert.equal(again.code, 0, "init on a registered folder only reports it");
  });
});
