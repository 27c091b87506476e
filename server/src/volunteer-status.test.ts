// The per-node revocation memory: one store read per volunteer per second at most, revocation
// through this node effective at once, through another node within the TTL. A fake monotonic
// clock drives time; the relay-level test uses a real relay and store.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { API, apiPath } from "@testigo/protocol";
import {
  bearer,
  type Campaign,
  coordinatorToken,
  enrollVolunteer,
  makeEnvelope,
  octet,
  type Relay,
  registerCampaign,
  startRelay,
} from "./test-fixture.js";
import { VOLUNTEER_STATUS_TTL_MS, VolunteerStatusCache } from "./volunteer-status.js";

function world(initial: boolean) {
  /** `hold`: reads wait for release() (a read in flight). */
  const state = { active: initial, reads: 0, now: 0, hold: false };
  let release: (() => void) | undefined;
  const cache = new VolunteerStatusCache(
    async () => {
      state.reads++;
      const answer = state.active;
      if (state.hold) await new Promise<void>((resolve) => (release = resolve));
      return answer;
    },
    { now: () => state.now },
  );
  return { state, cache, release: () => release?.() };
}

describe("VolunteerStatusCache", () => {
  it("reads an active volunteer once per TTL, and again once the TTL has passed", async () => {
    const { state, cache } = world(true);
    assert.equal(await cache.isActive("c", "v"), true);
    state.now += VOLUNTEER_STATUS_TTL_MS - 1;
    assert.equal(await cache.isActive("c", "v"), true);
    assert.equal(state.reads, 1);
    state.active = false; // revoked through another node
    state.now += 1;
    assert.equal(await cache.isActive("c", "v"), false, "no answer outlives the TTL");
    assert.equal(state.reads, 2);
  });

  it("forgets expired volunteers as time passes, not only when they come back", async () => {
    const { state, cache } = world(true);
    for (let i = 0; i < 100; i++) await cache.isActive("c", `v${i}`);
    assert.equal(cache.size, 100);
    state.now += VOLUNTEER_STATUS_TTL_MS;
    await cache.isActive("c", "someone-else");
    assert.equal(cache.size, 1, "only the volunteer just read is remembered");
  });

  it("never remembers a revoked or unknown volunteer", async () => {
    const { state, cache } = world(false);
    assert.equal(await cache.isActive("c", "v"), false);
    assert.equal(await cache.isActive("c", "v"), false);
    assert.equal(state.reads, 2);
  });

  it("keys by campaign and volunteer", async () => {
    const { state, cache } = world(true);
    await cache.isActive("c1", "v");
    await cache.isActive("c2", "v");
    await cache.isActive("c1", "w");
    assert.equal(state.reads, 3);
  });

  it("forget makes the next request read the store at once", async () => {
    const { state, cache } = world(true);
    assert.equal(await cache.isActive("c", "v"), true);
    state.active = false;
    cache.forget("c", "v");
    assert.equal(await cache.isActive("c", "v"), false);
    assert.equal(state.reads, 2);
  });

  it("shares one read between concurrent requests, and does not remember a read that a revocation overtook", async () => {
    const w = world(true);
    w.state.hold = true;
    const first = w.cache.isActive("c", "v");
    const second = w.cache.isActive("c", "v");
    assert.equal(w.state.reads, 1, "the second request joins the first one's read");
    // The revocation is written and forgotten while that read is in flight.
    w.state.active = false;
    w.cache.forget("c", "v");
    w.release();
    assert.equal(await first, true, "a request that started before the revocation may pass, as without the cache");
    assert.equal(await second, true);
    w.state.hold = false;
    assert.equal(await w.cache.isActive("c", "v"), false, "the overtaken read was not remembered");
    assert.equal(w.state.reads, 2);
  });

  it("a failed read is not remembered and reaches the caller", async () => {
    let fail = true;
    let reads = 0;
    const cache = new VolunteerStatusCache(async () => {
      reads++;
      if (fail) throw new Error("store down");
      return true;
    });
    await assert.rejects(cache.isActive("c", "v"), /store down/);
    fail = false;
    assert.equal(await cache.isActive("c", "v"), true);
    assert.equal(reads, 2);
  });
});

describe("revocation through the relay", { timeout: 60_000 }, () => {
  let relay: Relay;
  let campaign: Campaign;
  before(async () => {
    relay = await startRelay();
    campaign = await registerCampaign(relay);
  });
  after(async () => {
    await relay.close();
  });

  it("refuses a volunteer's very next request after its revocation on this node, though it was just remembered", async () => {
    const coordinator = await coordinatorToken(relay, campaign);
    const volunteer = await enrollVolunteer(relay, campaign, coordinator);
    const submit = () =>
      relay.app.inject({
        method: API.submitEnvelope.method,
        url: apiPath(API.submitEnvelope, { campaignId: campaign.campaignId }),
        headers: octet(volunteer.token),
        payload: Buffer.from(makeEnvelope(campaign.campaignId).bytes),
      });
    assert.equal((await submit()).statusCode, 202);
    assert.equal((await submit()).statusCode, 202);
    const revoke = await relay.app.inject({
      method: API.revokeVolunteer.method,
      url: apiPath(API.revokeVolunteer, { campaignId: campaign.campaignId, pseudonym: volunteer.pseudonym }),
      headers: bearer(coordinator),
    });
    assert.equal(revoke.statusCode, 200, revoke.body);
    const refused = await submit();
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json().error.code, "REVOKED");
  });
});
