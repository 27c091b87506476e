// The device the bad-wipe tests attack: a campaign of two coordinator devices on a real relay, a
// phone enrolled with --keep-sent that holds a report and an acta (the data a wipe must not erase
// when refused), a second volunteer (the target of misdirected wipes), and one notice from each
// roster device posted to the phone's mailbox — once the phone syncs, it holds a last counter per
// signer. Used by wipe-mutations.test.ts and wipe-mutations-cli.test.ts.
import { join } from "node:path";
import type { CoordinatorDevice } from "@testigo/client-sdk";
import { generateSigningKeyPair } from "@testigo/protocol";
import {
  type CoordinatorDevice as CoordinatorFolder,
  initCoordinator,
  invite,
  joinCoordinator,
  marker,
  photoFile,
} from "../helpers/campaign.js";
import { testigoOk } from "../helpers/cli.js";
import { syntheticPhoto } from "../helpers/photos.js";
import type { LoggedRelay } from "../helpers/relay.js";
import type { WipeContext } from "./bad-wipes.js";
import { bytes, enrollVolunteer, identityOf, openCoordinator, postNotice, type Volunteer5 } from "./fixture.js";

export interface WipeTarget {
  readonly phone: Volunteer5;
  /** The first coordinator's folder (`testigo coordinator …`). */
  readonly coordinator: CoordinatorFolder;
  /** In-process views of the two roster devices, in roster order. */
  readonly devices: readonly [CoordinatorDevice, CoordinatorDevice];
  /** The counter of the notice each roster device posted to the phone (same order as devices). */
  readonly counters: readonly number[];
  readonly ctx: WipeContext;
}

/** Builds the campaign and posts the baseline notices; the caller syncs the phone (and checks it). */
export async function wipeTarget(work: string, relay: LoggedRelay): Promise<WipeTarget> {
  const first = await initCoordinator(work, "coord-1", relay.url, relay.token);
  const second = await joinCoordinator(work, "coord-2", relay.url, first);
  const [code, otherCode] = await invite(first, 2);
  const phone = await enrollVolunteer(work, "phone", code as string, { keepSent: true });
  const other = await enrollVolunteer(work, "other-phone", otherCode as string);
  // Data the wipes must not erase: a report and an acta, kept on the device after sending.
  await testigoOk([
    "volunteer",
    "report",
    "--dir",
    phone.dir,
    "--table",
    marker(),
    "--text",
    marker(),
    "--pin-file",
    phone.pinFile,
  ]);
  const photo = syntheticPhoto(40_000);
  const file = photoFile(join(work, "camera"), "acta.jpg", photo.bytes, photo.exifMarker);
  await testigoOk([
    "volunteer",
    "acta",
    "--dir",
    phone.dir,
    "--table",
    marker(),
    "--pin-file",
    phone.pinFile,
    file.path,
  ]);

  // One notice from each roster device: once synced, the device holds a last counter per signer.
  const me = await identityOf(phone.dir, phone.pin);
  const otherIdentity = await identityOf(other.dir, other.pin);
  const devices = [await openCoordinator(first), await openCoordinator(second)] as const;
  const to = { pseudonym: phone.pseudonym, encryptionKey: bytes(me.encryption.publicKey) };
  const base = Date.now() - 60_000;
  const counters = [
    await postNotice(devices[0], to, base, "first"),
    await postNotice(devices[1], to, base + 7, "second"),
  ];
  const ctx: WipeContext = {
    campaignId: me.campaignId,
    me: to,
    other: { pseudonym: other.pseudonym, encryptionKey: bytes(otherIdentity.encryption.publicKey) },
    signers: devices.map((device, i) => ({
      deviceId: device.config.deviceId,
      signing: device.deviceKeys.signing,
      lastCounter: counters[i] as number,
    })),
    outsider: generateSigningKeyPair(),
    now: Date.now,
  };
  return { phone, coordinator: first, devices, counters, ctx };
}
