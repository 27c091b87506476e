// Coordinator devices have their own, larger rate-limit quota: draining a campaign's inbox on
// election night must not be held to a volunteer's bucket (real relay, real SQLite).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API, apiPath } from "@testigo/protocol";
import { loadConfig } from "./config/config.js";
import { readEnv } from "./config/env.js";
import { parseRelayFlags } from "./run-relay.js";
import {
  bearer,
  coordinatorToken,
  enrollVolunteer,
  makeCampaign,
  type Relay,
  registerCampaign,
  startRelay,
} from "./test-fixture.js";

async function statuses(relay: Relay, url: string, token: string, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await relay.app.inject({ method: "GET", url, headers: bearer(token) });
    out.push(res.statusCode);
  }
  return out;
}

describe("coordinator rate-limit quota", () => {
  it("gives a coordinator device its own, larger bucket", async () => {
    const relay = await startRelay({
      rateLimit: { capacity: 3, refillPerSecond: 1, coordinator: { capacity: 8, refillPerSecond: 1 } },
    });
    try {
      const campaign = await registerCampaign(relay, makeCampaign(1));
      const coord = await coordinatorToken(relay, campaign, 0);
      // The coordinator's first request (the invite) came from its own bucket too.
      const volunteer = await enrollVolunteer(relay, campaign, coord);
      const mailbox = apiPath(API.readMailbox, { campaignId: campaign.campaignId });
      const inbox = apiPath(API.readInbox, { campaignId: campaign.campaignId });
      assert.deepEqual(await statuses(relay, mailbox, volunteer.token, 4), [200, 200, 200, 429]);
      // 8 tokens, one spent on the invite: 7 more pass, then the coordinator is limited too.
      assert.deepEqual(await statuses(relay, inbox, coord, 8), [200, 200, 200, 200, 200, 200, 200, 429]);
    } finally {
      await relay.close();
    }
  });

  it("defaults to a coordinator quota ten times a volunteer's, set by flag or TESTIGO_*", () => {
    const defaults = loadConfig(readEnv({}));
    assert.deepEqual(defaults.rateLimit.coordinator, { capacity: 1_200, refillPerSecond: 100 });
    const fromEnv = loadConfig(
      readEnv({ TESTIGO_COORDINATOR_RATE_CAPACITY: "5000", TESTIGO_COORDINATOR_RATE_REFILL_PER_SECOND: "250" }),
    );
    assert.deepEqual(fromEnv.rateLimit.coordinator, { capacity: 5_000, refillPerSecond: 250 });
    const flags = parseRelayFlags(["--coordinator-rate-capacity", "900", "--coordinator-rate-refill-per-second", "90"]);
    const fromFlags = loadConfig({ ...readEnv({ TESTIGO_COORDINATOR_RATE_CAPACITY: "5000" }), ...flags });
    assert.deepEqual(fromFlags.rateLimit.coordinator, { capacity: 900, refillPerSecond: 90 });
    assert.throws(
      () => loadConfig(readEnv({ TESTIGO_COORDINATOR_RATE_CAPACITY: "0" })),
      /--coordinator-rate-capacity \/ TESTIGO_COORDINATOR_RATE_CAPACITY: must be at least 1/,
    );
  });
});
