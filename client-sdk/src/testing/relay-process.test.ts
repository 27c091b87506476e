import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startRelay } from "./relay-process.js";

describe("startRelay (a real relay child process)", () => {
  it("starts, answers /readyz, survives kill -9 and restarts on the same port and data folder", async () => {
    const relay = await startRelay();
    try {
      assert.match(relay.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await fetch(`${relay.url}/readyz`)).status, 200);
      const firstPid = relay.pid;
      await relay.kill9();
      await assert.rejects(fetch(`${relay.url}/readyz`));
      await relay.restart();
      assert.notEqual(relay.pid, firstPid);
      assert.equal((await fetch(`${relay.url}/readyz`)).status, 200);
    } finally {
      await relay.stop({ removeData: true });
    }
    await assert.rejects(fetch(`${relay.url}/readyz`));
  });

  it("fails with the child's output when the relay cannot start", async () => {
    await assert.rejects(startRelay({ args: ["--no-such-flag"] }), /exited during start-up/);
  });
});
