import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { concatBytes, initSodium, randomBytes, sodium, toHex, utf8 } from "@testigo/protocol";
import { MemoryStorage } from "./memory-storage.js";
import { CorruptRecord, ProfileStore, profileSubkeys } from "./profile-store.js";

before(async () => {
  await initSodium();
});

function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

describe("ProfileStore", () => {
  it("stores records encrypted, with names that reveal nothing", async () => {
    const storage = new MemoryStorage();
    const store = new ProfileStore(storage, randomBytes(32), randomBytes(16));
    const marker = new TextEncoder().encode("MARKER-acta-mesa-0159");
    await store.put("outbox/0001", marker);
    await store.putJson("settings", { table: "MARKER-table" });
    assert.deepEqual(await store.get("outbox/0001"), marker);
    assert.deepEqual(await store.getJson("settings", (v) => v), { table: "MARKER-table" });
    for (const file of await storage.list("")) assert.doesNotMatch(file, /outbox|settings/);
    for (const bytes of storage.snapshot()) {
      assert.equal(containsBytes(bytes, marker), false);
      assert.equal(containsBytes(bytes, new TextEncoder().encode("MARKER")), false);
    }
  });

  it("lists by prefix, deletes, and keeps profiles apart", async () => {
    const storage = new MemoryStorage();
    const a = new ProfileStore(storage, randomBytes(32), randomBytes(16));
    const b = new ProfileStore(storage, randomBytes(32), randomBytes(16));
    await a.put("outbox/2", new Uint8Array([2]));
    await a.put("outbox/1", new Uint8Array([1]));
    await a.put("keys", new Uint8Array([3]));
    await b.put("outbox/9", new Uint8Array([9]));
    assert.deepEqual(await a.list("outbox/"), ["outbox/1", "outbox/2"]);
    assert.deepEqual(await b.list(""), ["outbox/9"]);
    await a.delete("outbox/1");
    assert.equal(await a.get("outbox/1"), undefined);
    await a.destroy();
    assert.deepEqual(await a.list(""), []);
    assert.deepEqual(await b.list(""), ["outbox/9"]);
  });

  it("refuses a record that was altered or moved from another name", async () => {
    const storage = new MemoryStorage();
    const dataKey = randomBytes(32);
    const profileId = randomBytes(16);
    const store = new ProfileStore(storage, dataKey, profileId);
    await store.put("a", new Uint8Array([1, 2, 3]));
    const [fileA] = await storage.list("");
    await store.put("b", new Uint8Array([4, 5, 6]));
    const fileB = (await storage.list("")).find((file) => file !== fileA);
    const bytesA = (await storage.read(fileA as string)) as Uint8Array;
    await storage.write(fileB as string, bytesA);
    await assert.rejects(store.get("b"), CorruptRecord);
    const flipped = bytesA.slice();
    flipped[30] = (flipped[30] ?? 0) ^ 1;
    await storage.write(fileA as string, flipped);
    await assert.rejects(store.get("a"), CorruptRecord);
    // A reader that has not seen the files: list() cannot tell an altered file from another
    // profile's and skips it. ("a" is listed once: its copy in b's file still opens as record "a".)
    const reader = new ProfileStore(storage, dataKey, profileId);
    assert.deepEqual(await reader.list(""), ["a"]);
    // The writer remembers which record each of its files holds (list decrypts a file once), so
    // it lists both names; reading either is still refused.
    assert.deepEqual(await store.list(""), ["a", "b"]);
    await assert.rejects(store.get("a"), CorruptRecord);
    await assert.rejects(store.get("b"), CorruptRecord);
  });

  it("a different data key reads nothing", async () => {
    const storage = new MemoryStorage();
    const profileId = randomBytes(16);
    await new ProfileStore(storage, randomBytes(32), profileId).put("a", new Uint8Array([1]));
    const stranger = new ProfileStore(storage, randomBytes(32), profileId);
    assert.equal(await stranger.get("a"), undefined);
    assert.deepEqual(await stranger.list(""), []);
  });

  // Review finding (issue 5): file names were `r<profile tag>-<hash>`, so a folder with a real and
  // a decoy profile showed two tags — "two profiles" was visible without any PIN.
  it("file names do not reveal how many profiles share a folder; destroyOthers removes only the other's", async () => {
    const storage = new MemoryStorage();
    const real = new ProfileStore(storage, randomBytes(32), randomBytes(16));
    const decoy = new ProfileStore(storage, randomBytes(32), randomBytes(16));
    for (let i = 0; i < 5; i++) await real.put(`item/${i}`, new Uint8Array([i]));
    await decoy.put("identity", new Uint8Array([7]));
    const names = await storage.list("");
    assert.equal(names.length, 6);
    for (const name of names) assert.match(name, /^r[0-9a-f]{32}$/);
    assert.equal(await decoy.destroyOthers(), 5);
    assert.equal((await storage.list("")).length, 1);
    assert.deepEqual(await real.list(""), []);
    assert.deepEqual(await decoy.get("identity"), new Uint8Array([7]));
    await ProfileStore.destroyAll(storage);
    assert.deepEqual(await storage.list(""), []);
  });

  // Review finding L6: the data key was both the AEAD key of every record and the BLAKE2b key of
  // the file names. Two subkeys are derived from it now (crypto_kdf), one per job.
  it("data key separation: records and file names use distinct derived subkeys, never the data key", async () => {
    const storage = new MemoryStorage();
    const dataKey = randomBytes(32);
    const profileId = randomBytes(16);
    const store = new ProfileStore(storage, dataKey, profileId);
    await store.put("outbox/1", new Uint8Array([9, 9]));
    const [file] = await storage.list("");
    const bytes = (await storage.read(file as string)) as Uint8Array;
    const { recordKey, nameKey } = profileSubkeys(dataKey);
    assert.notDeepEqual(recordKey, nameKey);
    assert.notDeepEqual(recordKey, dataKey);
    assert.notDeepEqual(nameKey, dataKey);
    const s = sodium();
    const ad = concatBytes(utf8("testigo/v1/record"), new Uint8Array([0]), profileId);
    const open = (key: Uint8Array) => {
      try {
        return s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, bytes.subarray(24), ad, bytes.subarray(0, 24), key);
      } catch {
        return undefined;
      }
    };
    assert.equal(open(dataKey), undefined);
    assert.equal(open(nameKey), undefined);
    assert.deepEqual(open(recordKey)?.subarray(2 + "outbox/1".length), new Uint8Array([9, 9]));
    const nameHash = (key: Uint8Array) => toHex(s.crypto_generichash(16, concatBytes(ad, utf8("outbox/1")), key));
    assert.ok(file?.endsWith(nameHash(nameKey)));
    assert.ok(!file?.endsWith(nameHash(dataKey)));
    assert.ok(!file?.endsWith(nameHash(recordKey)));
  });
});
