// DESIGN A5 at the session door: a flood of challenge or session requests from clients that hold
// no credential must not lock out the volunteers and coordinators who do, and must write nothing.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  API,
  apiPath,
  generateDeviceKeys,
  generateSigningKeyPair,
  inviteRedeemToken,
  randomBytes,
  signAuthStatement,
  toBase64url,
} from "@testigo/protocol";
import {
  addInvite,
  type Campaign,
  challenge,
  coordinatorToken,
  enrollPayload,
  enrollVolunteer,
  openSession,
  type Relay,
  registerCampaign,
  startRelay,
  type Volunteer,
} from "./test-fixture.js";
import { digestChanges, storeDigest } from "./testing/store-digest.js";

/** A small quota, so that the old relay-wide buckets (50× a credential's) are easy to drain. */
const QUOTA = { capacity: 4, refillPerSecond: 0.001 };
/** Rate-limit buckets are merged into the store this often (the relay's default is 10 s). */
const MERGE_INTERVAL_MS = 50;

describe("the session door under a flood", { timeout: 120_000 }, () => {
  let relay: Relay;
  let campaign: Campaign;
  let alice: Volunteer;
  let bob: Volunteer;
  const digest = () => storeDigest({ kind: "sqlite", file: join(relay.dir, "relay.sqlite") });
  /**
   * The store once the rate limiter's periodic merges of earlier requests' buckets have landed:
   * two digests a few merge intervals apart agree. A token taken by the flood that follows would be
   * merged, and so seen, within the same wait.
   */
  async function settledDigest() {
    let previous = await digest();
    for (let i = 0; i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5 * MERGE_INTERVAL_MS));
      const current = await digest();
      if (digestChanges(previous, current).length === 0) return current;
      previous = current;
    }
    throw new Error("the store never settled");
  }

  before(async () => {
    relay = await startRelay({ rateLimit: { ...QUOTA, coordinator: QUOTA, mergeIntervalMs: MERGE_INTERVAL_MS } });
    campaign = await registerCampaign(relay);
    const coordinator = await coordinatorToken(relay, campaign);
    alice = await enrollVolunteer(relay, campaign, coordinator);
    bob = await enrollVolunteer(relay, campaign, coordinator);
  });
  after(async () => relay.close());

  it("issues challenges without writing anything and without a relay-wide limit", async () => {
    const before = await settledDigest();
    // 1,000 anonymous challenge requests: far past the old relay-wide bucket (4 × 50 = 200).
    for (let i = 0; i < 1_000; i++) {
      const res = await relay.app.inject({ method: API.challenge.method, url: API.challenge.path });
      assert.equal(res.statusCode, 201);
    }
    assert.deepEqual(digestChanges(before, await settledDigest()), [], "the store is unchanged");
    const res = await openSession(
      relay,
      campaign.campaignId,
      "volunteer",
      alice.pseudonym,
      alice.keys.signing.privateKey,
    );
    assert.equal(res.statusCode, 201, "a volunteer still opens a session");
  });

  it("refuses forged, unknown-principal and made-up session requests without writing anything", async () => {
    const before = await settledDigest();
    for (let i = 0; i < 300; i++) {
      const statements = [
        // a challenge this relay never issued
        {
          campaignId: campaign.campaignId,
          role: "volunteer" as const,
          principal: alice.pseudonym,
          challenge: toBase64url(randomBytes(32)),
        },
        // a real challenge, a principal that does not exist
        {
          campaignId: campaign.campaignId,
          role: "volunteer" as const,
          principal: `v-${"A".repeat(16)}`,
          challenge: await challenge(relay),
        },
        {
          campaignId: campaign.campaignId,
          role: "coordinator" as const,
          principal: "laptop-99",
          challenge: await challenge(relay),
        },
        {
          campaignId: toBase64url(randomBytes(16)),
          role: "coordinator" as const,
          principal: "laptop-1",
          challenge: await challenge(relay),
        },
      ];
      for (const statement of statements) {
        const res = await relay.app.inject({
          method: API.session.method,
          url: API.session.path,
          payload: { ...statement, signature: signAuthStatement(statement, generateSigningKeyPair().privateKey) },
        });
        assert.equal(res.statusCode, 401, JSON.stringify(statement));
        assert.equal(res.json().error.code, "AUTH_FAILED");
      }
    }
    assert.deepEqual(
      digestChanges(before, await settledDigest()),
      [],
      "nothing was written, not even a rate-limit bucket",
    );
    const res = await openSession(relay, campaign.campaignId, "volunteer", bob.pseudonym, bob.keys.signing.privateKey);
    assert.equal(res.statusCode, 201);
  });

  it("limits session attempts per principal: a flood aimed at one volunteer does not lock out another", async () => {
    let limited = 0;
    for (let i = 0; i < 50; i++) {
      const statement = {
        campaignId: campaign.campaignId,
        role: "volunteer" as const,
        principal: alice.pseudonym,
        challenge: await challenge(relay),
      };
      const res = await relay.app.inject({
        method: API.session.method,
        url: API.session.path,
        payload: { ...statement, signature: signAuthStatement(statement, generateSigningKeyPair().privateKey) },
      });
      if (res.statusCode === 429) {
        limited++;
        assert.equal(res.json().error.code, "RATE_LIMITED");
        assert.ok(Number(res.headers["retry-after"]) >= 1, "says when to retry");
      } else assert.equal(res.statusCode, 401);
    }
    assert.ok(limited >= 40, `alice's bucket (capacity ${QUOTA.capacity}) ran dry: ${limited} of 50 limited`);
    const res = await openSession(relay, campaign.campaignId, "volunteer", bob.pseudonym, bob.keys.signing.privateKey);
    assert.equal(res.statusCode, 201, "bob is not affected");
    const coordinator = await openSession(
      relay,
      campaign.campaignId,
      "coordinator",
      campaign.devices[1]?.id ?? "",
      campaign.devices[1]?.keys.signing.privateKey ?? new Uint8Array(),
    );
    assert.equal(coordinator.statusCode, 201, "nor are the coordinators");
  });

  it("refuses enrollments with made-up invites without writing anything, and a real invite still works", async () => {
    const url = apiPath(API.enroll, { campaignId: campaign.campaignId });
    const before = await settledDigest();
    // 300 signed enrollments with invites nobody issued: far past the old campaign-wide bucket (4 × 10).
    for (let i = 0; i < 300; i++) {
      const payload = enrollPayload(inviteRedeemToken(randomBytes(16)), generateDeviceKeys());
      const res = await relay.app.inject({ method: API.enroll.method, url, payload });
      assert.equal(res.statusCode, 404, res.body);
      assert.equal(res.json().error.code, "INVITE_INVALID");
    }
    assert.deepEqual(
      digestChanges(before, await settledDigest()),
      [],
      "nothing was written, not even a rate-limit bucket",
    );
    const redeemToken = await addInvite(relay, campaign, await coordinatorToken(relay, campaign));
    const res = await relay.app.inject({
      method: API.enroll.method,
      url,
      payload: enrollPayload(redeemToken, generateDeviceKeys()),
    });
    assert.equal(res.statusCode, 201, res.body);
  });

  it("still allows one attempt per challenge, and refuses it once expired", async () => {
    const device = campaign.devices[0];
    assert.ok(device);
    const statement = {
      campaignId: campaign.campaignId,
      role: "coordinator" as const,
      principal: device.id,
      challenge: await challenge(relay),
    };
    const good = { ...statement, signature: signAuthStatement(statement, device.keys.signing.privateKey) };
    const first = await relay.app.inject({ method: API.session.method, url: API.session.path, payload: good });
    assert.equal(first.statusCode, 201);
    const replay = await relay.app.inject({ method: API.session.method, url: API.session.path, payload: good });
    assert.equal(replay.statusCode, 401, "a challenge works once");
    const late = { ...statement, challenge: await challenge(relay) };
    const start = relay.now;
    try {
      relay.now = start + 3 * 60 * 1000;
      const res = await relay.app.inject({
        method: API.session.method,
        url: API.session.path,
        payload: { ...late, signature: signAuthStatement(late, device.keys.signing.privateKey) },
      });
      assert.equal(res.statusCode, 401, "expired");
    } finally {
      relay.now = start;
    }
  });
});
