// Adding a coordinator device to a campaign, in three steps:
//   1. the new device: `joinRequest` makes its keys and a request (device id + public keys);
//   2. the device holding the root key: `addDevice` signs a roster with the new device (serial + 1),
//      uploads it, and seals a bundle to the new device's encryption key;
//   3. the new device: `completeJoin` opens the bundle, verifies the roster against the root
//      fingerprint, and publishes its epoch keys.
// The bundle carries the campaign id, root fingerprint, relay URL, the shared invite key and the
// volunteer registry (so the new device can verify reports of volunteers enrolled earlier), but
// NOT the root signing key: only the creating device changes the roster.
//
// Bundle sealing: a fresh content key, wrapped to the new device's X25519 key (key-wrap.ts), and
// XChaCha20-Poly1305 over the JSON; both with ad = "testigo/v1/device-bundle" || 0x00 || deviceId.
import {
  createRoster,
  DOMAIN,
  decodeWrappedKey,
  encodeWrappedKey,
  fromUtf8,
  generateDeviceKeys,
  randomBytes,
  rosterDeviceKeys,
  roster as rosterSchema,
  separated,
  signedDocument,
  toBase64url,
  unwrapKey,
  utf8,
  verifyRoster,
  wipe,
  wrapKey,
  XCHACHA_NONCE_BYTES,
  xchachaDecrypt,
  xchachaEncrypt,
} from "@testigo/protocol";
import { z } from "zod";
import type { DeviceStorage } from "../storage/storage.js";
import { checkRelayUrl } from "../transport/relay-url.js";
import { newDeviceId } from "./campaign.js";
import { bytesOf, CoordinatorDevice, type DeviceOptions } from "./device.js";
import { CoordinatorError } from "./errors.js";
import { type DeviceConfig, deviceConfig, RECORD, rosterRecord, volunteerRecord } from "./state.js";
import { createVault, openVault } from "./vault.js";

const b64 = z.string().regex(/^[A-Za-z0-9_-]+$/);

export const joinRequestSchema = z.strictObject({
  v: z.literal(1),
  type: z.literal("testigo-join-request"),
  deviceId: z.string(),
  encryptionKey: b64,
  signingKey: b64,
  label: z.string().optional(),
});
export type JoinRequest = z.infer<typeof joinRequestSchema>;

const sealedBundle = z.strictObject({
  v: z.literal(1),
  type: z.literal("testigo-device-bundle"),
  deviceId: z.string(),
  entry: b64,
  nonce: b64,
  ciphertext: b64,
});

const bundleContents = z.strictObject({
  campaignId: z.string(),
  relayUrl: z.string(),
  rootFingerprint: b64,
  inviteKey: b64,
  roster: signedDocument,
  volunteers: z.array(volunteerRecord),
});

function bundleAd(deviceId: string): Uint8Array {
  return separated(DOMAIN.deviceBundle, utf8(deviceId));
}

function parseJsonText<S extends z.ZodType>(text: string, schema: S, what: string): z.infer<S> {
  try {
    return schema.parse(JSON.parse(text));
  } catch {
    throw new CoordinatorError("BAD_JOIN_FILE", `this is not a valid ${what}: check you gave the right file`);
  }
}

/** Step 1 (new device): keys, a pending device folder, and the request to hand to the root device. */
export async function joinRequest(
  storage: DeviceStorage,
  options: DeviceOptions & { passphrase: string; relayUrl: string; label?: string },
): Promise<string> {
  const relayUrl = checkRelayUrl(options.relayUrl);
  const store = await createVault(storage, options.passphrase, options.kdfLimits);
  const keys = generateDeviceKeys();
  const config: DeviceConfig = {
    v: 1,
    joined: false,
    registered: false,
    campaignId: "",
    deviceId: newDeviceId(),
    relayUrl,
    rootFingerprint: "",
    inviteKey: "",
    encryption: {
      publicKey: toBase64url(keys.encryption.publicKey),
      privateKey: toBase64url(keys.encryption.privateKey),
    },
    signing: { publicKey: toBase64url(keys.signing.publicKey), privateKey: toBase64url(keys.signing.privateKey) },
    createdAt: (options.now ?? Date.now)(),
  };
  await store.putJson(RECORD.config, config);
  const request: JoinRequest = {
    v: 1,
    type: "testigo-join-request",
    deviceId: config.deviceId,
    encryptionKey: config.encryption.publicKey,
    signingKey: config.signing.publicKey,
    ...(options.label === undefined ? {} : { label: options.label }),
  };
  return `${JSON.stringify(request)}\n`;
}

/** Step 2 (root device): new roster with the device, uploaded; returns the sealed bundle text. */
export async function addDevice(
  device: CoordinatorDevice,
  requestText: string,
): Promise<{ bundle: string; serial: number }> {
  const request = parseJsonText(requestText, joinRequestSchema, "join request");
  const root = device.rootKey;
  if (root === undefined) {
    throw new CoordinatorError(
      "NOT_ROOT_DEVICE",
      "only the device that created the campaign (it holds the root key) can add devices",
    );
  }
  const current = await device.roster();
  if (current === undefined) throw new CoordinatorError("NOT_INITIALISED", "this device has no roster");
  const roster = verifyRoster(current.signed, bytesOf(device.config.rootFingerprint));
  const devices = roster.devices
    .filter((d) => d.id !== request.deviceId)
    .map((d) => ({ id: d.id, ...rosterDeviceKeys(d), ...(d.label === undefined ? {} : { label: d.label }) }));
  devices.push({
    id: request.deviceId,
    encryptionKey: bytesOf(request.encryptionKey),
    signingKey: bytesOf(request.signingKey),
    ...(request.label === undefined ? {} : { label: request.label }),
  });
  const serial = roster.serial + 1;
  const signed = createRoster({ root, serial, issuedAt: device.now(), devices });
  await device.maintainEpochKeys();
  await device.client.putRoster(signed);
  await device.store.putJson(RECORD.roster, { serial, signed });

  const contents = bundleContents.parse({
    campaignId: device.config.campaignId,
    relayUrl: device.config.relayUrl,
    rootFingerprint: device.config.rootFingerprint,
    inviteKey: device.config.inviteKey,
    roster: signed,
    volunteers: await device.volunteers(),
  });
  const contentKey = randomBytes(32);
  const nonce = randomBytes(XCHACHA_NONCE_BYTES);
  const ad = bundleAd(request.deviceId);
  const entry = encodeWrappedKey(wrapKey(contentKey, bytesOf(request.encryptionKey), ad));
  const plaintext = utf8(JSON.stringify(contents));
  const ciphertext = xchachaEncrypt(plaintext, ad, nonce, contentKey);
  wipe(contentKey);
  wipe(plaintext);
  const bundle = sealedBundle.parse({
    v: 1,
    type: "testigo-device-bundle",
    deviceId: request.deviceId,
    entry: toBase64url(entry),
    nonce: toBase64url(nonce),
    ciphertext: toBase64url(ciphertext),
  });
  return { bundle: `${JSON.stringify(bundle)}\n`, serial };
}

/** Step 3 (new device): opens the bundle, checks the roster names this device, publishes epoch keys. */
export async function completeJoin(
  storage: DeviceStorage,
  options: DeviceOptions & { passphrase: string; bundle: string },
): Promise<CoordinatorDevice> {
  const store = await openVault(storage, options.passphrase);
  const config = await store.getJson(RECORD.config, (v) => deviceConfig.parse(v));
  if (config === undefined)
    throw new CoordinatorError("NOT_INITIALISED", "the device folder is incomplete: run join again");
  if (config.joined) return new CoordinatorDevice(store, config, options);
  const sealed = parseJsonText(options.bundle, sealedBundle, "device bundle");
  const ad = bundleAd(config.deviceId);
  const entry = decodeWrappedKey(bytesOf(sealed.entry));
  const contentKey =
    entry === undefined
      ? undefined
      : unwrapKey(
          entry,
          { publicKey: bytesOf(config.encryption.publicKey), privateKey: bytesOf(config.encryption.privateKey) },
          ad,
        );
  const plaintext =
    contentKey === undefined
      ? undefined
      : xchachaDecrypt(bytesOf(sealed.ciphertext), ad, bytesOf(sealed.nonce), contentKey);
  if (sealed.deviceId !== config.deviceId || plaintext === undefined) {
    throw new CoordinatorError(
      "BAD_JOIN_FILE",
      "this bundle was not made for this device's join request: ask for a new one",
    );
  }
  const contents = parseJsonText(fromUtf8(plaintext), bundleContents, "device bundle");
  const roster = verifyRoster(contents.roster, bytesOf(contents.rootFingerprint));
  const me = roster.devices.find((d) => d.id === config.deviceId);
  if (
    roster.campaignId !== contents.campaignId ||
    me?.signingKey !== config.signing.publicKey ||
    me.encryptionKey !== config.encryption.publicKey
  ) {
    throw new CoordinatorError(
      "BAD_JOIN_FILE",
      "the bundle's roster does not list this device's keys: ask for a new bundle",
    );
  }
  rosterSchema.parse(roster);
  for (const volunteer of contents.volunteers) {
    await store.putJson(RECORD.volunteer(volunteer.pseudonym), volunteer);
    await store.putJson(RECORD.volunteerKey(volunteer.signingKey), { pseudonym: volunteer.pseudonym });
    if (volunteer.duressKey !== undefined) {
      await store.putJson(RECORD.volunteerKey(volunteer.duressKey), { pseudonym: volunteer.pseudonym, duress: true });
    }
    // One identity per invite holds on this device too, for volunteers enrolled before it joined.
    if (volunteer.invite !== undefined) {
      await store.putJson(RECORD.inviteUse(volunteer.invite), {
        storedHash: volunteer.invite,
        signingKey: volunteer.signingKey,
        pseudonym: volunteer.pseudonym,
      });
    }
  }
  await store.putJson(RECORD.roster, rosterRecord.parse({ serial: roster.serial, signed: contents.roster }));
  const joined: DeviceConfig = {
    ...config,
    joined: true,
    registered: true,
    campaignId: contents.campaignId,
    relayUrl: checkRelayUrl(contents.relayUrl),
    rootFingerprint: contents.rootFingerprint,
    inviteKey: contents.inviteKey,
  };
  await store.putJson(RECORD.config, joined);
  const device = new CoordinatorDevice(store, joined, options);
  await device.maintainEpochKeys();
  return device;
}
