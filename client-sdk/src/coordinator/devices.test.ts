import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { initSodium, verifyRoster } from "@testigo/protocol";
import { MIN_KDF_LIMITS } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { initCampaign } from "./campaign.js";
import { bytesOf, CoordinatorDevice } from "./device.js";
import { addDevice, completeJoin, joinRequest } from "./devices.js";
import { CoordinatorError } from "./errors.js";
import { fetchInbox } from "./fetch.js";
import { mintInvites } from "./invites.js";
import { TestVolunteer } from "./node-test-volunteer.js";
import { MemoryOutput } from "./output.js";

/** Many requests from one address in a short test: lift the relay's per-credential rate limit. */
const RELAY_ENV = { TESTIGO_RATE_CAPACITY: "1000000", TESTIGO_RATE_REFILL_PER_SECOND: "1000000" };
const PASSPHRASE = "second device passphrase";

describe("a second coordinator device", () => {
  let relay: RelayProcess;
  before(async () => {
    await initSodium();
    relay = await startRelay({ env: RELAY_ENV });
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  it("joins through a request and a sealed bundle, and receives and verifies reports like the first", async () => {
    const first = new MemoryStorage();
    const init = await initCampaign(first, {
      relayUrl: relay.url,
      passphrase: PASSPHRASE,
      operatorToken: relay.token,
      kdfLimits: MIN_KDF_LIMITS,
    });
    const d1 = await CoordinatorDevice.open(first, PASSPHRASE);
    const second = new MemoryStorage();
    const request = await joinRequest(second, {
      passphrase: PASSPHRASE,
      relayUrl: relay.url,
      kdfLimits: MIN_KDF_LIMITS,
      label: "laptop B",
    });
    await assert.rejects(
      CoordinatorDevice.open(second, PASSPHRASE),
      (e: unknown) => e instanceof CoordinatorError && e.code === "JOIN_PENDING",
    );

    const { bundle, serial } = await addDevice(d1, request);
    assert.equal(serial, 2);
    // A bundle for another device's request does not open here.
    const stranger = new MemoryStorage();
    await joinRequest(stranger, { passphrase: PASSPHRASE, relayUrl: relay.url, kdfLimits: MIN_KDF_LIMITS });
    await assert.rejects(completeJoin(stranger, { passphrase: PASSPHRASE, bundle }), /not made for this device/);

    const d2 = await completeJoin(second, { passphrase: PASSPHRASE, bundle });
    assert.equal(d2.config.campaignId, init.campaignId);
    assert.equal(d2.fingerprintText, init.fingerprint);
    assert.equal(d2.rootKey, undefined, "the root key stays on the first device");
    const roster = verifyRoster(await d2.client.getRoster(init.campaignId), bytesOf(d2.config.rootFingerprint));
    assert.deepEqual(roster.devices.map((d) => d.id).sort(), [d1.config.deviceId, d2.config.deviceId].sort());
    await assert.rejects(
      addDevice(d2, request),
      (e: unknown) => e instanceof CoordinatorError && e.code === "NOT_ROOT_DEVICE",
    );

    // A volunteer invited by device 1 reaches both devices; device 2 checks the invite itself.
    const [invite] = await mintInvites(d1, { count: 1 });
    const volunteer = await TestVolunteer.enroll(invite?.code ?? "", init.campaignId);
    const id = await volunteer.status("1", "seen by both");
    for (const device of [d1, await CoordinatorDevice.open(second, PASSPHRASE)]) {
      const output = new MemoryOutput();
      const summary = await fetchInbox(device, output);
      assert.equal(summary.quarantined, 0);
      assert.deepEqual(
        output.reports.map((r) => r.kind),
        ["enrolled", "status"],
      );
      assert.equal(output.reports[1]?.id, id);
      assert.equal(output.reports[1]?.volunteer, volunteer.pseudonym);
    }
  });
});
