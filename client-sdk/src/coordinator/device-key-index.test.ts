// The key index (`vkey/<key>` → volunteer) is written once per key by a device, not at every
// putVolunteer, and is still found by any device opened later on the same folder.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  initSodium,
  pseudonymFromKeys,
  toBase64url,
} from "@testigo/protocol";
import { MIN_KDF_LIMITS } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { initCampaign } from "./campaign.js";
import { CoordinatorDevice } from "./device.js";
import { RECORD, type VolunteerRecord } from "./state.js";

const PASSPHRASE = "key index passphrase";

/** Counts the record files written, by file name. */
class CountingStorage extends MemoryStorage {
  readonly writes = new Map<string, number>();
  override async write(name: string, data: Uint8Array): Promise<void> {
    this.writes.set(name, (this.writes.get(name) ?? 0) + 1);
    await super.write(name, data);
  }
}

function volunteer(): VolunteerRecord {
  const signing = generateSigningKeyPair();
  const encryption = generateEncryptionKeyPair();
  return {
    pseudonym: pseudonymFromKeys({ signingKey: signing.publicKey, encryptionKey: encryption.publicKey }),
    signingKey: toBase64url(signing.publicKey),
    encryptionKey: toBase64url(encryption.publicKey),
    enrolledAt: 1_700_000_000_000,
    counts: {},
    duress: false,
    wipe: "none",
    lastControlCounter: 0,
  };
}

describe("the coordinator device's key index", () => {
  let relay: RelayProcess;
  before(async () => {
    await initSodium();
    relay = await startRelay();
  });
  after(async () => {
    await relay.stop({ removeData: true });
  });

  it("is written once per key, found by later devices, and written again only when it changes", async () => {
    const counting = new CountingStorage();
    await initCampaign(counting, {
      relayUrl: relay.url,
      passphrase: PASSPHRASE,
      operatorToken: relay.token,
      kdfLimits: MIN_KDF_LIMITS,
    });
    const open = () => CoordinatorDevice.open(counting, PASSPHRASE);
    const device = await open();
    const record = volunteer();
    const recordFile = device.store.fileNameOf(RECORD.volunteer(record.pseudonym));
    const keyFile = device.store.fileNameOf(RECORD.volunteerKey(record.signingKey));

    await device.putVolunteer(record);
    await device.putVolunteer({ ...record, counts: { status: 1 } });
    await device.putVolunteer({ ...record, counts: { status: 2 } });
    assert.equal(counting.writes.get(recordFile), 3);
    assert.equal(counting.writes.get(keyFile), 1);

    // A device opened later finds the volunteer by its key, and after that lookup does not
    // write the same index again either.
    const later = await open();
    const found = await later.volunteerByKey(Buffer.from(record.signingKey, "base64url"));
    assert.deepEqual(found, { volunteer: { ...record, counts: { status: 2 } }, duress: false });
    await later.putVolunteer({ ...record, counts: { status: 3 } });
    assert.equal(counting.writes.get(keyFile), 1);

    // A device that never looked the key up writes it (once): it cannot know the record is there.
    const fresh = await open();
    await fresh.putVolunteer({ ...record, counts: { status: 4 } });
    await fresh.putVolunteer({ ...record, counts: { status: 5 } });
    assert.equal(counting.writes.get(keyFile), 2);

    // A duress key announced later gets its own index record, marked duress.
    const duress = generateSigningKeyPair().publicKey;
    await fresh.putVolunteer({ ...record, duressKey: toBase64url(duress) });
    const byDuress = await (await open()).volunteerByKey(duress);
    assert.equal(byDuress?.duress, true);
    assert.equal(byDuress?.volunteer.pseudonym, record.pseudonym);
    assert.equal(counting.writes.get(keyFile), 2);
  });
});
