// `init`: a new campaign (root key, invite key, this device, roster serial 1), registered with
// the relay. Local state is written BEFORE registering, so an interrupted init never leaves a
// registered campaign whose keys are lost; running init again resumes the registration.
import {
  campaignIdFromRootKey,
  createRoster,
  generateDeviceKeys,
  generateSigningKeyPair,
  INVITE_KEY_BYTES,
  publicKeysOf,
  randomBytes,
  rosterFingerprint,
  toBase64url,
  toCrockfordBase32,
} from "@testigo/protocol";
import type { DeviceStorage } from "../storage/storage.js";
import { RelayRefused } from "../transport/errors.js";
import { checkRelayUrl } from "../transport/relay-url.js";
import { CoordinatorDevice, type DeviceOptions } from "./device.js";
import { type DeviceConfig, RECORD } from "./state.js";
import { createVault, isInitialised } from "./vault.js";

export interface InitOptions extends DeviceOptions {
  readonly relayUrl: string;
  readonly passphrase: string;
  readonly operatorToken: string;
  /** Shown to coordinators only, in the roster ("laptop of R."). */
  readonly label?: string;
}

export interface InitResult {
  readonly campaignId: string;
  readonly deviceId: string;
  /** Root fingerprint as coordinators read it aloud: "0123 4567 …". */
  readonly fingerprint: string;
  readonly rosterSerial: number;
  /** False if the folder was already initialised and only the registration was resumed. */
  readonly created: boolean;
}

/** A short random device id ("c-" and 8 Crockford base32 characters). */
export function newDeviceId(): string {
  return `c-${toCrockfordBase32(randomBytes(5))}`;
}

export async function initCampaign(storage: DeviceStorage, options: InitOptions): Promise<InitResult> {
  const relayUrl = checkRelayUrl(options.relayUrl);
  if (await isInitialised(storage)) return resumeRegistration(storage, options);
  const now = (options.now ?? Date.now)();
  const store = await createVault(storage, options.passphrase, options.kdfLimits);
  const root = generateSigningKeyPair();
  const keys = generateDeviceKeys();
  const deviceId = newDeviceId();
  const roster = createRoster({
    root,
    serial: 1,
    issuedAt: now,
    devices: [
      { id: deviceId, ...publicKeysOf(keys), ...(options.label === undefined ? {} : { label: options.label }) },
    ],
  });
  const config: DeviceConfig = {
    v: 1,
    joined: true,
    registered: false,
    campaignId: campaignIdFromRootKey(root.publicKey),
    deviceId,
    relayUrl,
    rootFingerprint: toBase64url(rosterFingerprint(root.publicKey)),
    inviteKey: toBase64url(randomBytes(INVITE_KEY_BYTES)),
    encryption: {
      publicKey: toBase64url(keys.encryption.publicKey),
      privateKey: toBase64url(keys.encryption.privateKey),
    },
    signing: { publicKey: toBase64url(keys.signing.publicKey), privateKey: toBase64url(keys.signing.privateKey) },
    root: { publicKey: toBase64url(root.publicKey), privateKey: toBase64url(root.privateKey) },
    createdAt: now,
  };
  await store.putJson(RECORD.roster, { serial: 1, signed: roster });
  await store.putJson(RECORD.config, config);
  const device = new CoordinatorDevice(store, config, options);
  return register(device, options.operatorToken, true);
}

async function resumeRegistration(storage: DeviceStorage, options: InitOptions): Promise<InitResult> {
  const device = await CoordinatorDevice.open(storage, options.passphrase, options);
  if (device.config.registered) {
    return { ...summary(device, (await device.roster())?.serial ?? 1), created: false };
  }
  return register(device, options.operatorToken, false);
}

async function register(device: CoordinatorDevice, operatorToken: string, created: boolean): Promise<InitResult> {
  const roster = await device.roster();
  if (roster === undefined) throw new Error("the device folder has no roster");
  try {
    await device.client.registerCampaign(operatorToken, roster.signed);
  } catch (error) {
    // A retry after a lost answer: the relay already has exactly this campaign.
    if (!(error instanceof RelayRefused && error.code === "CAMPAIGN_EXISTS")) throw error;
  }
  await device.saveConfig({ ...device.config, registered: true });
  await device.maintainEpochKeys();
  return { ...summary(device, roster.serial), created };
}

function summary(device: CoordinatorDevice, serial: number): Omit<InitResult, "created"> {
  return {
    campaignId: device.config.campaignId,
    deviceId: device.config.deviceId,
    fingerprint: device.fingerprintText,
    rosterSerial: serial,
  };
}
