// The property every hostile request must satisfy: never a 5xx; a refusal is a documented 4xx
// with the documented status and a wire-error body; nothing in the store changes; no key appears
// on Object.prototype; and the relay keeps answering.
import assert from "node:assert/strict";
import { type RelayErrorCode, SESSION_TTL_MS, wireError } from "@testigo/protocol";
import { digestChanges, type StoreDigestOptions } from "@testigo/server/testing";
import fc from "fast-check";
import { documentedErrors, prototypeKeys, START } from "./harness.js";
import type { FuzzCase } from "./route-arbitraries.js";
import type { World } from "./world.js";

/**
 * What the digest covers during the fuzz: everything but rate-limit buckets (every authenticated
 * request takes a token, even a refused one) and challenges (a session attempt burns its
 * challenge, right or wrong: one attempt per challenge is the documented rule).
 */
export const FUZZ_DIGEST: StoreDigestOptions = { include: ["data", "sessions", "sequences"] };
/** An exact retry may also advance SQLite's AUTOINCREMENT counter (see storeDigest); no row. */
export const RETRY_DIGEST: StoreDigestOptions = { include: ["data", "sessions"] };

const DOCUMENTED = documentedErrors();

export interface FuzzTally {
  readonly statuses: Map<number, number>;
  readonly codes: Map<string, number>;
  readonly labels: Set<string>;
}

export function newTally(): FuzzTally {
  return { statuses: new Map(), codes: new Map(), labels: new Set() };
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export async function checkCase(w: World, c: FuzzCase, tally: FuzzTally): Promise<void> {
  const req = await c.build(w);
  const sections = c.expect === "idempotent" ? RETRY_DIGEST : FUZZ_DIGEST;
  const before = await w.relay.digest(sections);
  const proto = prototypeKeys();
  if (c.expired) w.relay.now = START + SESSION_TTL_MS + 60_000;
  let res: Awaited<ReturnType<typeof w.relay.app.inject>>;
  try {
    res = await w.relay.app.inject({
      method: req.method,
      url: req.url,
      headers: req.headers,
      ...(req.payload === undefined ? {} : { payload: req.payload }),
    });
  } finally {
    w.relay.now = START;
  }
  const what = `${c.label}: ${req.method} ${req.url.slice(0, 120)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
  bump(tally.statuses, res.statusCode);
  tally.labels.add(c.label.replace(/[0-9]+/g, "N"));
  assert.ok(res.statusCode < 500, `a 5xx for bad input: ${what}`);
  if (c.expect === "rejected") assert.ok(res.statusCode >= 400, `accepted: ${what}`);
  if (res.statusCode >= 400) {
    const parsed = wireError.safeParse(JSON.parse(res.body));
    assert.ok(parsed.success, `not a wire error: ${what}`);
    const code: RelayErrorCode = parsed.data.error.code;
    bump(tally.codes, code);
    assert.equal(res.statusCode, DOCUMENTED.get(code), `${code} is not documented with this status: ${what}`);
    if (code === "RATE_LIMITED") assert.ok(Number(res.headers["retry-after"]) >= 1, `429 without Retry-After: ${what}`);
  }
  const after = await w.relay.digest(sections);
  assert.deepEqual(digestChanges(before, after), [], `the store changed: ${what}`);
  assert.equal(prototypeKeys(), proto, `Object.prototype changed: ${what}`);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, `Object.prototype polluted: ${what}`);
}

/** The relay still answers: health, readiness, and a real read of the roster. */
export async function assertAnswering(w: World): Promise<void> {
  assert.equal((await w.relay.app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
  assert.equal((await w.relay.app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
  const roster = await w.relay.app.inject({ method: "GET", url: `/v1/campaigns/${w.a.campaignId}/roster` });
  assert.equal(roster.statusCode, 200);
}

export async function fuzzRoute(
  w: World,
  arbitrary: fc.Arbitrary<FuzzCase>,
  options: { seed: number; numRuns: number },
  tally: FuzzTally,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(arbitrary, (c) => checkCase(w, c, tally)),
    { seed: options.seed, numRuns: options.numRuns, endOnFailure: true },
  );
  await assertAnswering(w);
}

export function summary(tally: FuzzTally): string {
  const statuses = [...tally.statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`);
  const codes = [...tally.codes].sort().map(([c, n]) => `${c}×${n}`);
  return `statuses ${statuses.join(" ")}; codes ${codes.join(" ")}; ${tally.labels.size} kinds of hostile input`;
}
