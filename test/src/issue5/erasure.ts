// After a wipe path (duress, remote wipe, panic, wrong-PIN limit): is the real profile gone?
// Everything worth finding is recorded BEFORE the erase — the real profile's data key (opened with
// the real PIN), its key pairs, the invite, the real PIN, the report markers and the photos — and
// afterwards the device folder is checked four ways:
//   1. the real PIN opens nothing;
//   2. the remembered data key decrypts no file any more (crypto-erase: nothing readable is left);
//   3. no file holds any of the needles, raw or encoded (test/src/helpers/scan.ts: UTF-8, UTF-16,
//      hex, base64, base64url at every alignment);
//   4. with `duressPin`: the decoy opens, and neither its decrypted records nor the capsule it
//      can open hold any of the needles (but the pseudonym: the decoy is that pseudonym, signing
//      with the duress key), in particular no byte of the real signing key.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCapsule, parseKeySlotFile } from "@testigo/client-sdk";
import { decodeInvite, inviteRedeemToken } from "@testigo/protocol";
import { binaryNeedle, describeFindings, filesUnder, type Needle, scanFiles, textNeedle } from "../helpers/scan.js";
import {
  type DeviceFiles,
  folderFiles,
  KEY_SLOT_FILE,
  type OpenedProfile,
  openProfile,
  openWithPin,
} from "./device-state.js";
import { bytes, identityOf } from "./fixture.js";

/** The decoy holds the real pseudonym by design (it signs as it with the duress key). */
const PSEUDONYM_NEEDLE = "real pseudonym";

/** The capsule region opened with the decoy's capsule secret key, if it opens (a pending duress). */
async function openDecoyCapsule(files: DeviceFiles, decoy: OpenedProfile): Promise<Uint8Array | undefined> {
  const keys = decoy.records.get("capsule-keys");
  const slots = await files.read(KEY_SLOT_FILE);
  if (keys === undefined || slots === undefined) return undefined;
  const secretKey = bytes((JSON.parse(Buffer.from(keys).toString("utf8")) as { secretKey: string }).secretKey);
  return openCapsule(parseKeySlotFile(slots), secretKey);
}

export interface RealSecrets {
  readonly pin: string;
  readonly profile: OpenedProfile;
  readonly pseudonym: string;
  readonly needles: readonly Needle[];
}

/** Two 64-byte windows of a photo: past the headers and in the middle. */
function photoWindows(label: string, photo: Uint8Array): Needle[] {
  const at = (offset: number) => photo.subarray(offset, offset + 64);
  return [
    binaryNeedle(`${label} bytes at 4096`, at(Math.min(4096, photo.length - 64))),
    binaryNeedle(`${label} bytes in the middle`, at(Math.floor(photo.length / 2))),
  ];
}

/**
 * Records what must not survive: opens the device with the real PIN and keeps its data key, keys,
 * pseudonym; plus the invite, the PIN(s), text markers and photos the caller names.
 */
export async function recordSecrets(
  dir: string,
  options: {
    pin: string;
    duressPin?: string;
    inviteCode: string;
    markers: readonly string[];
    photos: readonly Uint8Array[];
  },
): Promise<RealSecrets> {
  const profile = await openWithPin(folderFiles(dir), options.pin);
  if (profile === undefined) throw new Error("recordSecrets: the real PIN does not open the device");
  const identity = await identityOf(dir, options.pin);
  const signing = bytes(identity.signing.privateKey);
  const secret = decodeInvite(options.inviteCode).secret;
  const needles: Needle[] = [
    textNeedle("real PIN", options.pin),
    ...(options.duressPin === undefined ? [] : [textNeedle("duress PIN", options.duressPin)]),
    textNeedle("invite code", options.inviteCode),
    binaryNeedle("invite secret", secret),
    binaryNeedle("invite redeem token", inviteRedeemToken(secret)),
    binaryNeedle("invite proof", bytes(identity.invite.proof)),
    binaryNeedle("real data key", profile.dataKey),
    binaryNeedle("real signing seed", signing.subarray(0, 32)),
    binaryNeedle("real signing secret key", signing),
    binaryNeedle("real signing public key", bytes(identity.signing.publicKey)),
    binaryNeedle("real encryption private key", bytes(identity.encryption.privateKey)),
    binaryNeedle("real encryption public key", bytes(identity.encryption.publicKey)),
    textNeedle(PSEUDONYM_NEEDLE, identity.pseudonym),
    ...options.markers.map((m, i) => textNeedle(`report marker #${i}`, m)),
    ...options.photos.flatMap((p, i) => photoWindows(`photo #${i}`, p)),
  ];
  return { pin: options.pin, profile, pseudonym: identity.pseudonym, needles };
}

/** Positive control: before the erase, the real profile's plaintext holds the markers (the needles work). */
export function assertNeedlesInPlaintext(real: RealSecrets, labels: readonly RegExp[]): void {
  const dir = mkdtempSync(join(tmpdir(), "testigo-issue5-plain-"));
  try {
    for (const [i, value] of [...real.profile.records.values()].entries()) writeFileSync(join(dir, `r${i}`), value);
    const found = new Set(scanFiles(filesUnder(dir), real.needles).map((f) => f.label));
    for (const label of labels) {
      const needles = real.needles.filter((n) => label.test(n.label));
      assert.ok(needles.length > 0, `control: some needle matches ${label}`);
      for (const needle of needles)
        assert.ok(found.has(needle.label), `control: ${needle.label} is in the real profile`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The four checks above; `duressPin` when a decoy must remain. Returns the decoy, if any. */
export async function assertErased(
  dir: string,
  real: RealSecrets,
  options: { duressPin?: string } = {},
): Promise<OpenedProfile | undefined> {
  const files = folderFiles(dir);
  assert.equal(await openWithPin(files, real.pin), undefined, "the real PIN still opens the device");
  const leftover = await openProfile(files, real.profile);
  assert.deepEqual(
    [...leftover.records.keys()],
    [],
    "files that the real profile's data key still decrypts are left on the device",
  );
  const findings = scanFiles(filesUnder(dir), real.needles);
  assert.equal(findings.length, 0, `device folder ${dir}: ${describeFindings(findings)}`);
  if (options.duressPin === undefined) return undefined;
  const decoy = await openWithPin(files, options.duressPin);
  assert.ok(decoy !== undefined, "the duress PIN opens the decoy");
  assert.ok(decoy.records.size > 0, "the decoy holds records");
  const plain = mkdtempSync(join(tmpdir(), "testigo-issue5-decoy-"));
  try {
    for (const [i, [name, value]] of [...decoy.records].entries()) {
      writeFileSync(join(plain, `${i}-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`), value);
    }
    // The capsule, opened with the decoy's capsule key, is scanned too.
    const capsule = await openDecoyCapsule(files, decoy);
    if (capsule !== undefined) writeFileSync(join(plain, "capsule"), capsule);
    const needles = real.needles.filter((n) => n.label !== PSEUDONYM_NEEDLE);
    const inDecoy = scanFiles(filesUnder(plain), needles);
    assert.equal(inDecoy.length, 0, `the decoy's decrypted records: ${describeFindings(inDecoy)}`);
  } finally {
    rmSync(plain, { recursive: true, force: true });
  }
  return decoy;
}
