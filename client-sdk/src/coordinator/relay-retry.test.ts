// RelayRetry on its own: what is retried, when fetch gives up (and with which code), cancelling.
// Real timers with millisecond delays; no assertion depends on how long anything took.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RelayRefused, RelayUnreachable } from "../transport/errors.js";
import { CoordinatorError } from "./errors.js";
import { RelayRetry, RequestCancelled } from "./relay-retry.js";

const limited = () => new RelayRefused("RATE_LIMITED", 429, "too many requests; retry in 1 s", 5);
const quick = { baseDelayMs: 1, maxDelayMs: 5 };

/** An operation that fails with `errors` in turn, then answers "ok"; counts its calls. */
function flaky(...errors: Error[]) {
  const calls = { count: 0 };
  const operation = async () => {
    const error = errors[calls.count++];
    if (error !== undefined) throw error;
    return "ok";
  };
  return { calls, operation };
}

describe("RelayRetry", () => {
  it("retries rate limits and network failures until the request succeeds", async () => {
    const { calls, operation } = flaky(limited(), new RelayUnreachable("http://127.0.0.1:1", "reset"), limited());
    assert.equal(await new RelayRetry(quick).run(operation), "ok");
    assert.equal(calls.count, 4);
  });

  it("does not retry a refusal for good", async () => {
    const { calls, operation } = flaky(new RelayRefused("FORBIDDEN", 403, "not a coordinator"));
    await assert.rejects(new RelayRetry(quick).run(operation), { code: "FORBIDDEN" });
    assert.equal(calls.count, 1);
  });

  it("gives up with RELAY_RETRY_DEADLINE when nothing succeeds for stallMs", async () => {
    const retry = new RelayRetry({ ...quick, stallMs: 30 });
    const failing = async () => {
      throw new RelayUnreachable("http://127.0.0.1:1", "connection refused");
    };
    await assert.rejects(retry.run(failing), (error: unknown) => {
      assert.ok(error instanceof CoordinatorError);
      assert.equal(error.code, "RELAY_RETRY_DEADLINE");
      assert.match(error.message, /run fetch again later, it resumes where it stopped/);
      return true;
    });
  });

  it("starts the stall clock afresh after an idle time (a long --follow)", async () => {
    let clock = 0;
    const retry = new RelayRetry({ ...quick, stallMs: 1_000, now: () => clock });
    assert.equal(await retry.run(async () => "first"), "first");
    clock += 3_600_000; // an hour with no request at all
    const { calls, operation } = flaky(new RelayUnreachable("http://127.0.0.1:1", "reset"));
    assert.equal(await retry.run(operation), "ok");
    assert.equal(calls.count, 2);
  });

  it("stops retrying at once when its signal aborts", async () => {
    const cancel = new AbortController();
    let calls = 0;
    const operation = async () => {
      calls++;
      cancel.abort();
      throw limited();
    };
    await assert.rejects(
      new RelayRetry(quick).run(operation, cancel.signal),
      (e: unknown) => e instanceof RequestCancelled,
    );
    assert.equal(calls, 1);
  });
});
