// Issue 5 campaigns through the `testigo` command: coordinators (init, join), volunteers enrolled
// with a PIN and optionally a duress PIN (both from files), in-process views of the coordinator
// devices (to seal control messages with their roster keys) and of a volunteer's profile.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CoordinatorDevice, MIN_KDF_LIMITS, volunteer as sdk } from "@testigo/client-sdk";
import { CONTROL_KIND, CONTROL_VERSION, fromBase64url, sealControl } from "@testigo/protocol";
import { NodeStorage } from "../../../client-sdk/dist/storage/node-storage.js";
import type { CoordinatorDevice as CoordinatorFolder } from "../helpers/campaign.js";
import { type CliRun, testigo, testigoOk } from "../helpers/cli.js";
import { folderFiles, openWithPin } from "./device-state.js";

export interface Volunteer5 {
  readonly name: string;
  readonly dir: string;
  readonly pin: string;
  readonly pinFile: string;
  readonly duressPin?: string;
  readonly duressPinFile?: string;
  readonly pseudonym: string;
  readonly inviteCode: string;
}

/** A numeric 10-digit PIN (cannot occur by chance in a scanned file's numbers). */
export function newPin(): string {
  return Array.from(randomBytes(10), (b) => String(b % 10)).join("");
}

export function secretFile(work: string, name: string, value: string): string {
  const dir = join(work, "secrets");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return path;
}

/** `testigo volunteer enroll --pin-file F [--duress-pin-file G] [--keep-sent] --json`. */
export async function enrollVolunteer(
  work: string,
  name: string,
  inviteCode: string,
  options: { duress?: boolean; keepSent?: boolean; extra?: readonly string[] } = {},
): Promise<Volunteer5> {
  const pin = newPin();
  const pinFile = secretFile(work, `${name}.pin`, pin);
  const dir = join(work, name);
  const args = ["volunteer", "enroll", "--dir", dir, "--invite", inviteCode, "--pin-file", pinFile, "--json"];
  let duress: { duressPin: string; duressPinFile: string } | undefined;
  if (options.duress === true) {
    let duressPin = newPin();
    while (duressPin === pin) duressPin = newPin();
    duress = { duressPin, duressPinFile: secretFile(work, `${name}.duress-pin`, duressPin) };
    args.push("--duress-pin-file", duress.duressPinFile);
  }
  if (options.keepSent === true) args.push("--keep-sent");
  args.push(...(options.extra ?? []));
  const run = await testigoOk(args);
  const { pseudonym } = JSON.parse(run.stdout) as { pseudonym: string };
  return { name, dir, pin, pinFile, pseudonym, inviteCode, ...duress };
}

/** A phone enrolled through the SDK with a PIN and a duress PIN (both also in files). */
export interface SdkPhone {
  readonly dir: string;
  readonly pseudonym: string;
  readonly pin: string;
  readonly duressPin: string;
  readonly pinFile: string;
  readonly duressPinFile: string;
}

/**
 * Enrolls `work/name` through the SDK (cheap argon2id parameters, which the command accepts when
 * it reads the key-slot file) with a PIN and a duress PIN, automatic check-ins off, and sends its
 * `enrolled` report at once (so later captures carry only what the test does).
 */
export async function enrollSdkPhone(work: string, name: string, inviteCode: string): Promise<SdkPhone> {
  const pin = newPin();
  let duressPin = newPin();
  while (duressPin === pin) duressPin = newPin();
  const dir = join(work, name);
  const enrolled = await sdk.enroll({
    storage: await NodeStorage.open(dir),
    inviteCode,
    pin,
    duressPin,
    checkinIntervalMs: 0,
    limits: MIN_KDF_LIMITS,
    now: Date.now,
  });
  const sent = await (await sdk.Volunteer.fromStore(enrolled.store)).sync({ budgetMs: 30_000 });
  assert.equal(sent.envelopesSent, 1, "the enrolled report was sent");
  return {
    dir,
    pseudonym: enrolled.pseudonym,
    pin,
    duressPin,
    pinFile: secretFile(work, `${name}.pin`, pin),
    duressPinFile: secretFile(work, `${name}.duress-pin`, duressPin),
  };
}

/** `testigo volunteer COMMAND --dir D --pin-file F …` with the given PIN file. */
export function volunteerCli(
  command: string,
  volunteer: { dir: string },
  pinFile: string,
  extra: readonly string[] = [],
): Promise<CliRun> {
  return testigo(["volunteer", command, "--dir", volunteer.dir, "--pin-file", pinFile, ...extra]);
}

/** The coordinator device of a folder, unlocked in this process. */
export async function openCoordinator(folder: CoordinatorFolder): Promise<CoordinatorDevice> {
  return CoordinatorDevice.open(await NodeStorage.open(folder.dir), folder.passphrase);
}

/** The volunteer's identity record (keys, pseudonym), read from its folder with its PIN. */
export async function identityOf(
  dir: string,
  pin: string,
): Promise<{
  pseudonym: string;
  campaignId: string;
  signing: { publicKey: string; privateKey: string };
  encryption: { publicKey: string; privateKey: string };
  invite: { nonce: string; storedHash: string; proof: string };
}> {
  const profile = await openWithPin(folderFiles(dir), pin);
  const identity = profile?.records.get("identity");
  if (identity === undefined) throw new Error(`the PIN does not open an identity in ${dir}`);
  return JSON.parse(identity.toString("utf8"));
}

export function bytes(text: string): Uint8Array {
  const out = fromBase64url(text);
  if (out === undefined) throw new Error("not base64url");
  return out;
}

/** Posts a notice signed by `device` to a volunteer's mailbox; returns the counter it used. */
export async function postNotice(
  device: CoordinatorDevice,
  to: { pseudonym: string; encryptionKey: Uint8Array },
  counter: number,
  text: string,
): Promise<number> {
  const now = Date.now();
  const { message } = sealControl({
    campaignId: device.config.campaignId,
    to,
    signer: { deviceId: device.config.deviceId, signing: device.deviceKeys.signing },
    payload: {
      kind: CONTROL_KIND.notice,
      v: CONTROL_VERSION,
      campaignId: device.config.campaignId,
      to: to.pseudonym,
      from: device.config.deviceId,
      counter,
      issuedAt: now,
      expiresAt: now + 24 * 60 * 60 * 1000,
      text,
    },
  });
  await device.client.putMailbox(to.pseudonym, message);
  return counter;
}
