// Sealed session tokens (H5): opening a session stores nothing, any node of the same store
// accepts the token, and a token from another relay, a tampered or an expired one is refused.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { API, apiPath, fromBase64url, toBase64url } from "@testigo/protocol";
import { buildApp } from "./app.js";
import { appConfig } from "./config/config.js";
import { createLogger } from "./logger.js";
import {
  bearer,
  coordinatorToken,
  enrollVolunteer,
  OPERATOR_TOKEN,
  type Relay,
  registerCampaign,
  startRelay,
} from "./test-fixture.js";

const relays: Relay[] = [];
after(async () => {
  for (const relay of relays) await relay.close();
});

async function relay(): Promise<Relay> {
  const started = await startRelay();
  relays.push(started);
  return started;
}

function readMailbox(r: Relay, campaignId: string, pseudonym: string, token: string) {
  return r.app.inject({
    method: API.readMailbox.method,
    url: apiPath(API.readMailbox, { campaignId, pseudonym }),
    headers: bearer(token),
  });
}

describe("sealed session tokens", { timeout: 60_000 }, () => {
  it("are accepted by a second relay process on the same store, refused by another relay", async () => {
    const a = await relay();
    const campaign = await registerCampaign(a);
    const coordinator = await coordinatorToken(a, campaign);
    const volunteer = await enrollVolunteer(a, campaign, coordinator);
    assert.equal((await readMailbox(a, campaign.campaignId, volunteer.pseudonym, volunteer.token)).statusCode, 200);

    // A second app on the same store (another node): same relay secret, the token opens.
    const twin = buildApp(appConfig({ registrationToken: OPERATOR_TOKEN }), {
      store: a.store,
      logger: createLogger({ level: "silent" }),
      clock: () => a.now,
    });
    try {
      const res = await readMailbox({ ...a, app: twin }, campaign.campaignId, volunteer.pseudonym, volunteer.token);
      assert.equal(res.statusCode, 200);
    } finally {
      await twin.close();
    }

    // Another relay (its own store, its own secret) refuses it like any unknown token.
    const b = await relay();
    await registerCampaign(b, campaign);
    const other = await readMailbox(b, campaign.campaignId, volunteer.pseudonym, volunteer.token);
    assert.equal(other.statusCode, 401);
    assert.equal(other.json().error.code, "AUTH_REQUIRED");
  });

  it("refuse a tampered token and an expired one with 401 AUTH_REQUIRED", async () => {
    const r = await relay();
    const campaign = await registerCampaign(r);
    const coordinator = await coordinatorToken(r, campaign);
    const volunteer = await enrollVolunteer(r, campaign, coordinator);
    const bytes = fromBase64url(volunteer.token) ?? new Uint8Array();
    bytes[40] = (bytes[40] ?? 0) ^ 0x80;
    const tampered = await readMailbox(r, campaign.campaignId, volunteer.pseudonym, toBase64url(bytes));
    assert.equal(tampered.statusCode, 401);
    assert.equal(tampered.json().error.code, "AUTH_REQUIRED");
    // Used while live (the relay node now remembers it opened), then refused once expired.
    const live = await readMailbox(r, campaign.campaignId, volunteer.pseudonym, volunteer.token);
    assert.equal(live.statusCode, 200);
    r.now += 60 * 60 * 1000; // SESSION_TTL_MS later
    for (let i = 0; i < 2; i++) {
      const expired = await readMailbox(r, campaign.campaignId, volunteer.pseudonym, volunteer.token);
      assert.equal(expired.statusCode, 401);
      assert.equal(expired.json().error.code, "AUTH_REQUIRED");
    }
  });
});
