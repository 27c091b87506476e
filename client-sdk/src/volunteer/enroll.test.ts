// Enrollment over a link that drops answers: the invite is redeemed once, the answer is lost, and
// the retry gets the same pseudonym (the relay treats the same keys on a spent invite as a retry).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { initSodium } from "@testigo/protocol";
import { MIN_KDF_LIMITS } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { fetchTransport, type HttpTransport } from "../transport/http.js";
import { enroll } from "./enroll.js";
import { type TestCoordinator, testCoordinator } from "./test-coordinator.js";

describe("enroll over a lossy link (real relay)", () => {
  let relay: RelayProcess;
  let coordinator: TestCoordinator;

  before(async () => {
    await initSodium();
    relay = await startRelay();
    coordinator = await testCoordinator(relay.url, relay.token);
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  it("retries reads and a redemption whose answer was lost, and enrolls once", async () => {
    const seen: string[] = [];
    let dropped = 0;
    // Every request reaches the relay; the first answer of each kind is lost on the way back.
    const lossy: HttpTransport = async (request) => {
      const response = await fetchTransport(request);
      const kind = `${request.method} ${new URL(request.url).pathname.split("/").pop()}`;
      if (!seen.includes(kind)) {
        seen.push(kind);
        dropped++;
        throw new Error("socket hang up (answer lost)");
      }
      return response;
    };
    const enrolled = await enroll({
      storage: new MemoryStorage(),
      inviteCode: await coordinator.invite(),
      pin: "246810135",
      limits: MIN_KDF_LIMITS,
      transport: lossy,
      now: Date.now,
    });
    assert.ok(dropped >= 3, `answers of the roster, epoch-key and enroll requests were lost (${seen.join(", ")})`);
    assert.match(enrolled.pseudonym, /^v-/);
    // The relay holds exactly one volunteer: the lost answer did not enroll a second identity.
    const { volunteers } = await coordinator.client.listVolunteers();
    assert.deepEqual(
      volunteers.map((v) => v.pseudonym),
      [enrolled.pseudonym],
    );
  });
});
