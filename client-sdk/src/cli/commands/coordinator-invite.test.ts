// `testigo coordinator invite --qr DIR` with the real bin and a real relay process: one
// owner-only PNG per invite, each encoding exactly its invite code.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type RelayProcess, startRelay } from "../../testing/relay-process.js";
import { inviteQrPng } from "./coordinator-invite-qr.js";
import { runCli } from "./coordinator-test-cli.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe("testigo coordinator invite --qr (CLI, real relay process)", () => {
  let relay: RelayProcess;
  const work = mkdtempSync(join(tmpdir(), "testigo-cli-invite-qr-"));
  const dir = join(work, "device");

  before(async () => {
    relay = await startRelay();
    const init = await runCli(["coordinator", "init", "--dir", dir, "--relay", relay.url], {
      TESTIGO_RELAY_TOKEN: relay.token,
    });
    assert.equal(init.code, 0, init.stderr);
  });
  after(async () => {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("writes one owner-only PNG QR code per invite, in the order of the codes", async () => {
    const qr = join(work, "qr");
    const run = await runCli(["coordinator", "invite", "--dir", dir, "--count", "3", "--qr", qr, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const { invites } = JSON.parse(run.stdout) as { invites: { code: string; qr: string }[] };
    assert.equal(invites.length, 3);
    assert.deepEqual(readdirSync(qr).sort(), ["invite-001.png", "invite-002.png", "invite-003.png"]);
    assert.equal(statSync(qr).mode & 0o777, 0o700);
    for (const [n, invite] of invites.entries()) {
      assert.equal(invite.qr, join(qr, `invite-00${n + 1}.png`));
      const png = readFileSync(invite.qr);
      assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
      assert.equal(statSync(invite.qr).mode & 0o777, 0o600, "an invite is a secret: owner-only");
      // The encoder is deterministic: the file is the QR code of exactly this invite's code.
      assert.deepEqual(png, await inviteQrPng(invite.code));
    }
    const plain = await runCli(["coordinator", "invite", "--dir", dir, "--qr", join(work, "qr2")]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^T1-/);
    assert.match(plain.stderr, /1 QR code\(s\) written/);
  });
});
