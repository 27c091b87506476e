import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { concatBytes, fromHex, toHex, utf8 } from "./bytes.js";
import { InviteCodeInvalid, Malformed } from "./errors.js";
import {
  createInvite,
  decodeInvite,
  encodeInvite,
  fromCrockfordBase32,
  groupCheck,
  INVITE_PREFIX,
  type Invite,
  inviteProof,
  inviteProofBase64url,
  inviteRedeemToken,
  inviteRedeemTokenBase64url,
  inviteStoredHash,
  inviteStoredHashBase64url,
  relayUrlProblem,
  verifyInviteProof,
} from "./invite.js";
import { INVITE_KEY_BYTES, isCampaignInviteSecret } from "./invite-secret.js";
import { generateDeviceKeys, generateSigningKeyPair, toCrockfordBase32 } from "./keys.js";
import { rosterFingerprint } from "./roster.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

const VECTORS = new URL("../test-vectors/invite.json", import.meta.url);
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function seedOf(byte: number): Uint8Array {
  return new Uint8Array(32).map((_, i) => (byte + i) & 0xff);
}

interface InviteVector {
  name: string;
  rootSeed: string;
  secret: string;
  relayUrl: string;
  volunteerEncryptionSeed: string;
  volunteerSigningSeed: string;
  expected: {
    rootFingerprint: string;
    payload: string;
    code: string;
    redeemToken: string;
    storedHash: string;
    volunteerSigningKey: string;
    volunteerEncryptionKey: string;
    proof: string;
  };
}

function makeVector(v: Omit<InviteVector, "expected">): InviteVector {
  const rootFp = rosterFingerprint(generateSigningKeyPair(fromHex(v.rootSeed)).publicKey);
  const secret = fromHex(v.secret);
  const volunteer = generateDeviceKeys({
    encryption: fromHex(v.volunteerEncryptionSeed),
    signing: fromHex(v.volunteerSigningSeed),
  });
  const token = inviteRedeemToken(secret);
  return {
    ...v,
    expected: {
      rootFingerprint: toHex(rootFp),
      payload: toHex(concatBytes(new Uint8Array([1]), rootFp, secret, utf8(v.relayUrl))),
      code: encodeInvite({ relayUrl: v.relayUrl, rootFingerprint: rootFp, secret }),
      redeemToken: toHex(token),
      storedHash: toHex(inviteStoredHash(token)),
      volunteerSigningKey: toHex(volunteer.signing.publicKey),
      volunteerEncryptionKey: toHex(volunteer.encryption.publicKey),
      proof: toHex(inviteProof(secret, volunteer.signing.publicKey, volunteer.encryption.publicKey)),
    },
  };
}

function vectorInputs(): Omit<InviteVector, "expected">[] {
  const base = {
    rootSeed: toHex(seedOf(0x01)),
    volunteerEncryptionSeed: toHex(seedOf(0x41)),
    volunteerSigningSeed: toHex(seedOf(0x51)),
  };
  return [
    {
      name: "https relay",
      ...base,
      secret: toHex(seedOf(0x31).subarray(0, 16)),
      relayUrl: "https://relay.example.org",
    },
    { name: "loopback relay", ...base, secret: "00".repeat(16), relayUrl: "http://127.0.0.1:8787" },
    {
      name: "onion relay with a path",
      ...base,
      secret: "ff".repeat(16),
      relayUrl: "http://pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion/testigo",
    },
  ];
}

/** Encodes arbitrary payload bytes the way encodeInvite does, to build codes it would refuse to make. */
function encodePayload(payload: Uint8Array): string {
  const data = toCrockfordBase32(payload);
  const count = Math.ceil(data.length / 4);
  const groups: string[] = [];
  for (let g = 0; g < count; g++) {
    const chunk = data.slice(g * 4, g * 4 + 4);
    const digits = [...chunk].map((c) => ALPHABET.indexOf(c));
    groups.push(chunk + ALPHABET[groupCheck(g + 1, digits, g === count - 1)]);
  }
  return INVITE_PREFIX + groups.join("-");
}

function sample(): Invite {
  return {
    relayUrl: "https://relay.example.org",
    rootFingerprint: rosterFingerprint(generateSigningKeyPair(seedOf(1)).publicKey),
    secret: seedOf(0x31).slice(0, 16),
  };
}

function groupError(code: string): number | undefined {
  try {
    decodeInvite(code);
  } catch (error) {
    assert.ok(error instanceof InviteCodeInvalid, String(error));
    return error.group ?? -1;
  }
  return undefined;
}

describe("invite golden vectors", () => {
  it("match the checked-in file in both directions (UPDATE_VECTORS=1 regenerates it)", () => {
    if (process.env.UPDATE_VECTORS === "1" || !existsSync(VECTORS)) {
      assert.equal(process.env.UPDATE_VECTORS, "1", "test-vectors/invite.json is missing: run with UPDATE_VECTORS=1");
      mkdirSync(new URL(".", VECTORS), { recursive: true });
      const file = { construction: "testigo invite v1", vectors: vectorInputs().map(makeVector) };
      writeFileSync(VECTORS, `${JSON.stringify(file, null, 2)}\n`);
    }
    const file = JSON.parse(readFileSync(VECTORS, "utf8")) as { vectors: InviteVector[] };
    assert.equal(file.vectors.length, 3);
    for (const v of file.vectors) {
      assert.deepEqual(makeVector(v), v, v.name);
      const decoded = decodeInvite(v.expected.code);
      assert.equal(decoded.relayUrl, v.relayUrl);
      assert.equal(toHex(decoded.rootFingerprint), v.expected.rootFingerprint);
      assert.equal(toHex(decoded.secret), v.secret);
      assert.equal(encodePayload(fromHex(v.expected.payload)), v.expected.code);
      const proof = fromHex(v.expected.proof);
      assert.ok(
        verifyInviteProof(
          decoded.secret,
          fromHex(v.expected.volunteerSigningKey),
          fromHex(v.expected.volunteerEncryptionKey),
          proof,
        ),
      );
      assert.equal(toHex(inviteStoredHash(fromHex(v.expected.redeemToken))), v.expected.storedHash);
    }
  });
});

const hostname = fc
  .array(fc.stringMatching(/^[a-z0-9]{1,12}$/), { minLength: 1, maxLength: 4 })
  .map((labels) => `${labels.join(".")}.org`);
const relayUrl = fc.oneof(
  hostname.map((h) => `https://${h}`),
  fc.tuple(hostname, fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `https://${h}:${p}/relay`),
  fc.integer({ min: 1, max: 65535 }).map((p) => `http://localhost:${p}`),
);
const invite = fc.record({
  relayUrl,
  rootFingerprint: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  secret: fc.uint8Array({ minLength: 16, maxLength: 16 }),
});

describe("invite codes", () => {
  it("round-trip, also typed in lower case, with spaces, O for 0 and I or L for 1", () => {
    fc.assert(
      fc.property(invite, (generated) => {
        const value = { ...generated }; // fast-check records have a null prototype
        const code = encodeInvite(value);
        assert.deepEqual(decodeInvite(code), value);
        const sloppy = code.toLowerCase().replaceAll("-", " ").replaceAll("0", "o").replaceAll("1", "l");
        assert.deepEqual(decodeInvite(` ${sloppy}\n`), value);
        assert.deepEqual(decodeInvite(code.replaceAll("-", "")), value);
      }),
    );
  });

  it("detect every single-character substitution and name its group", () => {
    const code = encodeInvite(sample());
    const groups = code.slice(INVITE_PREFIX.length).split("-");
    let checked = 0;
    for (const [g, group] of groups.entries()) {
      for (let i = 0; i < group.length; i++) {
        for (const replacement of `${ALPHABET}U*`) {
          if (replacement === group[i]) continue;
          const changed = [...groups];
          changed[g] = group.slice(0, i) + replacement + group.slice(i + 1);
          assert.equal(groupError(INVITE_PREFIX + changed.join("-")), g + 1, `${group} → ${changed[g]}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 24 * 5 * 31);
  });

  it("detect every swap of two adjacent different characters in a group, check character included", () => {
    fc.assert(
      fc.property(invite, (value) => {
        const groups = encodeInvite(value).slice(INVITE_PREFIX.length).split("-");
        for (const [g, group] of groups.entries()) {
          for (let i = 0; i + 1 < group.length; i++) {
            if (group[i] === group[i + 1]) continue;
            const changed = [...groups];
            changed[g] = group.slice(0, i) + group[i + 1] + group[i] + group.slice(i + 2);
            assert.equal(groupError(INVITE_PREFIX + changed.join("-")), g + 1);
          }
        }
      }),
      { numRuns: 30 },
    );
  });

  it("the check catches every adjacent transposition of any two digits at any position (exhaustive)", () => {
    for (let position = 1; position <= 32; position++) {
      for (let a = 0; a < 32; a++) {
        for (let b = 0; b < 32; b++) {
          if (a === b) continue;
          for (const isLast of [false, true]) {
            assert.notEqual(groupCheck(position, [a, b], isLast), groupCheck(position, [b, a], isLast));
          }
        }
      }
    }
  });

  it("detect a missing, duplicated or swapped group", () => {
    const code = encodeInvite(sample());
    const groups = code.slice(INVITE_PREFIX.length).split("-");
    const last = groups.length;
    assert.equal(groupError(INVITE_PREFIX + groups.slice(0, -1).join("-")), last - 1);
    assert.equal(groupError(INVITE_PREFIX + [...groups, groups.at(-1)].join("-")), last);
    const swapped = [...groups];
    [swapped[2], swapped[3]] = [groups[3] as string, groups[2] as string];
    assert.equal(groupError(INVITE_PREFIX + swapped.join("-")), 3);
    const dropped = [...groups.slice(0, 4), ...groups.slice(5)];
    assert.equal(groupError(INVITE_PREFIX + dropped.join("-")), 5);
  });

  it("are QR-friendly: uppercase alphanumerics and '-', 143 characters for a typical relay", () => {
    const code = encodeInvite(sample());
    assert.match(code, /^T1(?:-[0-9A-HJKMNP-TV-Z]{5})+$|^T1(?:-[0-9A-HJKMNP-TV-Z]{5})*-[0-9A-HJKMNP-TV-Z]{2,5}$/);
    // 1 + 16 + 16 + 25 bytes = 58 bytes = 93 data characters = 24 groups.
    assert.equal(code.length, 143);
    // QR alphanumeric mode holds 0-9, A-Z, space and $%*+-./: — the code is within it, and 143
    // characters fit a version 6 symbol at error correction level M (capacity 154).
    assert.ok(code.length <= 154);
    const longest = encodeInvite({ ...sample(), relayUrl: `https://${"a".repeat(188)}.org` });
    assert.equal(longest.length, 563);
  });

  it("refuse codes without the prefix, from another version, cut short or with a bad relay address", () => {
    const s = sample();
    const header = concatBytes(new Uint8Array([1]), s.rootFingerprint, s.secret);
    assert.equal(groupError(encodeInvite(s).slice(3)), -1);
    assert.equal(groupError("T1-"), -1);
    assert.equal(groupError(`T1-${"0".repeat(2000)}`), -1);
    assert.equal(
      groupError(encodePayload(concatBytes(new Uint8Array([2]), s.rootFingerprint, s.secret, utf8(s.relayUrl)))),
      1,
    );
    assert.equal(groupError(encodePayload(header)), 14); // no relay address: the last group is missing
    assert.equal(groupError(encodePayload(concatBytes(header, utf8("ftp://relay.example.org")))), -1);
    assert.equal(groupError(encodePayload(concatBytes(header, new Uint8Array([0xff, 0xfe])))), -1);
    assert.equal(groupError(encodePayload(concatBytes(header, utf8("http://relay.example.org")))), -1);
    // An extra character after the last group: the last group no longer ends the code, so its
    // "last group" check fails and it is the group named.
    const code = encodeInvite(s);
    assert.equal(groupError(`${code}-0`), code.split("-").length - 1);
  });

  it("accept only https relays, or http to loopback and onion services", () => {
    for (const url of [
      "https://relay.example.org",
      "https://relay.example.org:8443/testigo/",
      "https://xn--caf-dma.example",
      "http://localhost:8787",
      "http://127.0.0.1",
      "http://[::1]:8787",
      "http://abc.onion",
    ]) {
      assert.equal(relayUrlProblem(url), undefined, url);
    }
    for (const url of [
      "http://relay.example.org",
      "https:relay.example.org",
      "HTTPS://relay.example.org",
      "https://user:pw@relay.example.org",
      "https://relay.example.org/?a=1",
      "https://relay.example.org/#x",
      "https://relay example.org",
      "https://relay.example.org\\@evil.example",
      "https://café.example",
      `https://${"a".repeat(200)}.org`,
      "wss://relay.example.org",
      "",
    ]) {
      assert.notEqual(relayUrlProblem(url), undefined, url);
      assert.throws(() => encodeInvite({ ...sample(), relayUrl: url }), Malformed);
    }
  });
});

// Review finding L4: decoding used \s and toUpperCase() with full Unicode, so 'ı' read as 1,
// 'ſ' as S, 'ß' as SS and a no-break space vanished: a code other than the printed one decoded.
describe("invite decoding unicode: only ASCII is normalised", () => {
  it("refuses look-alike and case-mapped non-ASCII characters, naming the group", () => {
    const code = encodeInvite(sample());
    const groups = code.slice(INVITE_PREFIX.length).split("-");
    const lookAlikes: [string, string][] = [
      ["1", "ı"], // dotless i, uppercases to I
      ["1", "İ"],
      ["S", "ſ"], // long s, uppercases to S
      ["K", "\u212a"], // Kelvin sign
      ["0", "ｏ"], // fullwidth o
    ];
    let checked = 0;
    for (const [g, group] of groups.entries()) {
      for (const [ascii, other] of lookAlikes) {
        const at = group.indexOf(ascii);
        if (at < 0) continue;
        const changed = [...groups];
        changed[g] = group.slice(0, at) + other + group.slice(at + 1);
        const typed = INVITE_PREFIX + changed.join("-");
        assert.throws(
          () => decodeInvite(typed),
          (error) => error instanceof InviteCodeInvalid && error.group === g + 1,
          `${other} in group ${g + 1}`,
        );
        checked++;
      }
    }
    assert.ok(checked > 0);
    // 'ß' would have become "SS"; a no-break space or other Unicode space would have vanished.
    for (const inserted of ["ß", "\u00a0", "\u2003", "\u3000", "\u200b", "\u2028"]) {
      const typed = `${INVITE_PREFIX}${groups[0]}${inserted}${groups.slice(1).join("-")}`;
      assert.throws(
        () => decodeInvite(typed),
        (error) => error instanceof InviteCodeInvalid && error.group === 2,
        JSON.stringify(inserted),
      );
    }
    assert.throws(() => decodeInvite(`\u0131${code.slice(1)}`), InviteCodeInvalid); // "ı1-..." is not "T1-"
  });

  it("still accepts ASCII lower case, spaces, tabs, line breaks and dashes anywhere", () => {
    const value = sample();
    const code = encodeInvite(value);
    const spaced = [...code.toLowerCase()].join(" ").replaceAll("-", "\t-\r\n");
    assert.deepEqual(decodeInvite(spaced), value);
    assert.equal(fromCrockfordBase32("ſ"), undefined);
    assert.equal(fromCrockfordBase32("\u00a0"), undefined);
  });
});

// Review finding S1: createInvite drew a random secret, which every coordinator device refuses;
// secrets are self-authenticating under the campaign's invite key (invite-secret.ts).
describe("invite secrets from createInvite", () => {
  it("are minted under the campaign's invite key, so every coordinator device accepts them", () => {
    const inviteKey = seedOf(0x61);
    const otherKey = seedOf(0x62);
    const fingerprint = rosterFingerprint(generateSigningKeyPair(seedOf(0x63)).publicKey);
    for (let i = 0; i < 20; i++) {
      const invite = createInvite("https://relay.example.org", fingerprint, inviteKey);
      assert.equal(isCampaignInviteSecret(inviteKey, invite.secret), true);
      assert.equal(isCampaignInviteSecret(otherKey, invite.secret), false);
      assert.deepEqual(decodeInvite(encodeInvite(invite)), invite);
    }
    assert.throws(
      () => createInvite("https://relay.example.org", fingerprint, new Uint8Array(INVITE_KEY_BYTES - 1)),
      Malformed,
    );
  });
});

describe("Crockford base32 decoding", () => {
  it("inverts toCrockfordBase32 and rejects non-canonical padding bits", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        assert.deepEqual(fromCrockfordBase32(toCrockfordBase32(bytes)), bytes);
        assert.deepEqual(fromCrockfordBase32(toCrockfordBase32(bytes).toLowerCase()), bytes);
      }),
    );
    assert.equal(fromCrockfordBase32("ZZ"), undefined); // 0xff then non-zero padding bits
    assert.equal(fromCrockfordBase32("U0"), undefined);
    assert.equal(fromCrockfordBase32("0"), undefined);
  });
});

describe("what the relay sees", () => {
  it("the stored hash is a hash of the redeem token, which is a hash of the secret", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (secret) => {
        const token = inviteRedeemToken(secret);
        assert.equal(token.length, 32);
        assert.notDeepEqual(token.subarray(0, 16), secret);
        assert.notDeepEqual(inviteStoredHash(token), token);
        assert.equal(inviteStoredHashBase64url(token).length, 43);
        assert.equal(inviteRedeemTokenBase64url(secret).length, 43);
      }),
    );
    // Malformed (a ProtocolError), not RangeError: these lengths come from hostile input (review L3).
    assert.throws(() => inviteRedeemToken(new Uint8Array(15)), Malformed);
    assert.throws(() => inviteStoredHash(new Uint8Array(16)), Malformed);
  });

  it("an invite proof verifies only for its secret and the exact volunteer keys", () => {
    const secret = seedOf(7).slice(0, 16);
    const volunteer = generateDeviceKeys();
    const sk = volunteer.signing.publicKey;
    const ek = volunteer.encryption.publicKey;
    const proof = inviteProof(secret, sk, ek);
    assert.equal(inviteProofBase64url(secret, sk, ek).length, 43);
    assert.ok(verifyInviteProof(secret, sk, ek, proof));
    assert.ok(!verifyInviteProof(secret, ek, sk, proof));
    assert.ok(!verifyInviteProof(seedOf(8).slice(0, 16), sk, ek, proof));
    assert.ok(!verifyInviteProof(secret, sk, ek, proof.subarray(1)));
    assert.ok(!verifyInviteProof(secret.subarray(1), sk, ek, proof));
    fc.assert(
      fc.property(fc.nat({ max: 32 * 8 * 3 - 1 }), (bit) => {
        const parts = [proof.slice(), sk.slice(), ek.slice()];
        const part = parts[Math.floor(bit / 256)] as Uint8Array;
        const b = bit % 256;
        part[b >> 3] = (part[b >> 3] as number) ^ (1 << (b & 7));
        assert.ok(!verifyInviteProof(secret, parts[1] as Uint8Array, parts[2] as Uint8Array, parts[0] as Uint8Array));
      }),
    );
  });
});

// Task P: invites are ASCII after the documented normalisation; full-width digits, look-alike
// letters of other scripts and Unicode dashes or spaces are refused by name, never mapped.
describe("invite decoding refuses every non-ASCII character with a clear INVITE error", () => {
  const nonAscii = [
    "\uff11", // fullwidth digit one
    "\uff10", // fullwidth digit zero
    "\uff21", // fullwidth A
    "\u0410", // Cyrillic A
    "\u0391", // Greek Alpha
    "\u0661", // Arabic-Indic digit one
    "\u{1d7cf}", // mathematical bold digit one (a surrogate pair)
    "\u2010", // hyphen
    "\u2212", // minus sign
    "\u00a0", // no-break space
    "\u00e9", // e with acute
  ];

  it("anywhere in a group, naming that group and saying why", () => {
    const code = encodeInvite(sample());
    const body = code.slice(INVITE_PREFIX.length);
    fc.assert(
      fc.property(fc.nat({ max: body.length - 1 }), fc.constantFrom(...nonAscii), (at, other) => {
        if (body[at] === "-") return;
        const typed = INVITE_PREFIX + body.slice(0, at) + other + body.slice(at + 1);
        const group = body.slice(0, at).split("-").length;
        assert.throws(
          () => decodeInvite(typed),
          (error) =>
            error instanceof InviteCodeInvalid &&
            error.code === "INVITE_CODE_INVALID" &&
            error.group === group &&
            error.message.includes("not a plain ASCII") &&
            !error.message.includes(other),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("in the prefix, and fullwidth copies of a whole code", () => {
    const code = encodeInvite(sample());
    for (const prefix of ["\uff34\uff11-", "\u0422" + "1-", "T\uff11-", "T1\u2010"]) {
      assert.throws(
        () => decodeInvite(prefix + code.slice(INVITE_PREFIX.length)),
        (error) => error instanceof InviteCodeInvalid && error.message.includes("not a plain ASCII"),
        JSON.stringify(prefix),
      );
    }
    // What a phone keyboard in full-width mode would type: every ASCII character shifted by 0xfee0.
    const fullwidth = [...code].map((c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).join("");
    assert.throws(() => decodeInvite(fullwidth), InviteCodeInvalid);
    // The documented ASCII normalisation still reads a code typed loosely.
    const loose = code.toLowerCase().replace(/0/g, "o").replace(/1/g, "l").replace(/-/g, " ");
    assert.deepEqual(decodeInvite(loose), decodeInvite(code));
  });

  it("refuses a value that is not text at all", () => {
    assert.throws(() => decodeInvite(42 as unknown as string), InviteCodeInvalid);
  });
});
