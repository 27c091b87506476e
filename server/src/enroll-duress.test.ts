// Issue 5 review: an enrollment's duress key D must come with D's own signature over the enroll
// message (proof of possession). A missing or wrong one is refused before anything is written:
// the store is unchanged (storeDigest) and the invite is not spent. Real SQLite store, inject().
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  API,
  apiPath,
  generateDeviceKeys,
  generateSigningKeyPair,
  randomBytes,
  signEnrollment,
  signEnrollmentDuress,
  toBase64url,
} from "@testigo/protocol";
import {
  addInvite,
  type Campaign,
  coordinatorToken,
  enrollPayload,
  enrollVolunteer,
  type Relay,
  registerCampaign,
  startRelay,
  type Volunteer,
} from "./test-fixture.js";
import { digestChanges, storeDigest } from "./testing/store-digest.js";

let relay: Relay;
let campaign: Campaign;
let coordinator: string;
let victim: Volunteer;

before(async () => {
  relay = await startRelay();
  campaign = await registerCampaign(relay);
  coordinator = await coordinatorToken(relay, campaign);
  victim = await enrollVolunteer(relay, campaign, coordinator);
});
after(async () => {
  await relay.close();
});

/** Everything stored: rate limits move on every enrollment attempt without anything being stored. */
const digest = () =>
  storeDigest({ kind: "sqlite", file: join(relay.dir, "relay.sqlite") }, { include: ["data", "sequences"] });

function enroll(payload: Record<string, unknown>) {
  return relay.app.inject({
    method: API.enroll.method,
    url: apiPath(API.enroll, { campaignId: campaign.campaignId }),
    payload,
  });
}

describe("enroll: proof of possession of the duress key", () => {
  it("refuses a missing, forged or misbound duress signature, writing nothing, and the invite stays unspent", async () => {
    const token = await addInvite(relay, campaign, coordinator);
    const keys = generateDeviceKeys();
    const s = keys.signing.publicKey;
    const e = keys.encryption.publicKey;
    const own = generateSigningKeyPair();
    const valid = enrollPayload(token, keys, own);
    // The hijack: the victim's signing key announced as this device's duress key. The thief can
    // cover it with its own signature, but D's signature can only be made with its own D.
    const stolen = victim.keys.signing.publicKey;
    const hijack = {
      ...valid,
      duressKey: toBase64url(stolen),
      signature: signEnrollment(token, s, e, keys.signing.privateKey, stolen),
      duressSignature: signEnrollmentDuress(token, s, e, stolen, own.privateKey),
    };
    const { duressSignature: _dropped, ...withoutSignature } = valid;
    const { duressKey: _key, ...withoutKey } = valid;
    const cases: [string, Record<string, unknown>, number, string][] = [
      ["no duress signature", withoutSignature, 400, "MALFORMED_REQUEST"],
      [
        "a duress signature without a duress key",
        { ...withoutKey, signature: enrollPayload(token, keys, null).signature },
        400,
        "MALFORMED_REQUEST",
      ],
      ["the victim's signing key as duress key", hijack, 401, "AUTH_FAILED"],
      ["random bytes", { ...valid, duressSignature: toBase64url(randomBytes(64)) }, 401, "AUTH_FAILED"],
      [
        "signed by the signing key",
        { ...valid, duressSignature: signEnrollmentDuress(token, s, e, own.publicKey, keys.signing.privateKey) },
        401,
        "AUTH_FAILED",
      ],
      [
        "signed for another invite",
        { ...valid, duressSignature: signEnrollmentDuress(randomBytes(32), s, e, own.publicKey, own.privateKey) },
        401,
        "AUTH_FAILED",
      ],
    ];
    for (const [name, payload, status, code] of cases) {
      const before = await digest();
      const res = await enroll(payload);
      assert.equal(res.statusCode, status, `${name}: ${res.body}`);
      assert.equal(res.json().error.code, code, name);
      assert.deepEqual(digestChanges(before, await digest()), [], name);
    }
    // Nothing was spent: the same invite enrolls these keys with their real duress key.
    const res = await enroll(valid);
    assert.equal(res.statusCode, 201, res.body);
  });

  it("a request without a duress key (a client that predates it) still enrolls", async () => {
    const token = await addInvite(relay, campaign, coordinator);
    const res = await enroll(enrollPayload(token, generateDeviceKeys(), null));
    assert.equal(res.statusCode, 201, res.body);
  });
});
