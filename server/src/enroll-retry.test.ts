// Enrollment under a dropped connection: the volunteer whose 201 was lost retries with the same
// invite and the same keys and gets the same success; other keys still meet the burned invite.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { API, apiPath, generateDeviceKeys, pseudonymFromKeys, publicKeysOf } from "@testigo/protocol";
import {
  addInvite,
  bearer,
  type Campaign,
  coordinatorToken,
  enrollPayload,
  makeCampaign,
  type Relay,
  registerCampaign,
  startRelay,
} from "./test-fixture.js";

let relay: Relay;
let campaign: Campaign;
let coord: string;

before(async () => {
  relay = await startRelay();
  campaign = await registerCampaign(relay, makeCampaign(1));
  coord = await coordinatorToken(relay, campaign, 0);
});

after(async () => {
  await relay.close();
});

function enroll(payload: ReturnType<typeof enrollPayload>) {
  return relay.app.inject({
    method: API.enroll.method,
    url: apiPath(API.enroll, { campaignId: campaign.campaignId }),
    payload,
  });
}

describe("enrollment retried after a lost answer", () => {
  it("answers the same invite with the same keys again with the same 201, and writes nothing", async () => {
    const redeemToken = await addInvite(relay, campaign, coord);
    const keys = generateDeviceKeys();
    const first = await enroll(enrollPayload(redeemToken, keys));
    assert.equal(first.statusCode, 201, first.body);
    const before = await relay.store.listVolunteers(campaign.campaignId);
    const retry = await enroll(enrollPayload(redeemToken, keys));
    assert.equal(retry.statusCode, 201, retry.body);
    assert.deepEqual(retry.json(), first.json());
    assert.deepEqual(first.json(), { pseudonym: pseudonymFromKeys(publicKeysOf(keys)) });
    assert.deepEqual(await relay.store.listVolunteers(campaign.campaignId), before);
  });

  it("still refuses the burned invite to other keys with 404 INVITE_INVALID", async () => {
    const redeemToken = await addInvite(relay, campaign, coord);
    assert.equal((await enroll(enrollPayload(redeemToken, generateDeviceKeys()))).statusCode, 201);
    const other = await enroll(enrollPayload(redeemToken, generateDeviceKeys()));
    assert.equal(other.statusCode, 404);
    assert.equal(other.json().error.code, "INVITE_INVALID");
  });

  it("refuses a revoked volunteer's retry with 404 INVITE_INVALID", async () => {
    const redeemToken = await addInvite(relay, campaign, coord);
    const keys = generateDeviceKeys();
    assert.equal((await enroll(enrollPayload(redeemToken, keys))).statusCode, 201);
    const revoke = await relay.app.inject({
      method: "POST",
      url: apiPath(API.revokeVolunteer, {
        campaignId: campaign.campaignId,
        pseudonym: pseudonymFromKeys(publicKeysOf(keys)),
      }),
      headers: bearer(coord),
    });
    assert.ok(revoke.statusCode < 300, revoke.body);
    const retry = await enroll(enrollPayload(redeemToken, keys));
    assert.equal(retry.statusCode, 404);
    assert.equal(retry.json().error.code, "INVITE_INVALID");
  });

  it("keeps refusing enrolled keys on a fresh invite with 409 ALREADY_ENROLLED (the invite stays usable)", async () => {
    const keys = generateDeviceKeys();
    assert.equal((await enroll(enrollPayload(await addInvite(relay, campaign, coord), keys))).statusCode, 201);
    const fresh = await addInvite(relay, campaign, coord);
    const again = await enroll(enrollPayload(fresh, keys));
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, "ALREADY_ENROLLED");
    assert.equal((await enroll(enrollPayload(fresh, generateDeviceKeys()))).statusCode, 201);
  });
});
