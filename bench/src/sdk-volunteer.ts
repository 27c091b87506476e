// The volunteer SDK benchmark: the time to seal and queue one real acta photo (what a phone does
// when the witness presses "send" before any network), against the bare libsodium operations the
// same work needs, measured in one run (DESIGN.md §6). Not a test: nothing here asserts.
//
//   node bench/dist/sdk-volunteer.js            (after `npx tsc -b`)
//
// Ours: `Volunteer.acta()` on an enrolled device: SHA-256 of the photo, secretstream of the photo
// to chunk-count-bucketed chunks, the signed and padded acta report sealed to the coordinator
// devices, every record encrypted under the profile's key and written to the outbox (on disk:
// atomic write + fsync per file; in memory: no I/O). Raw: the secretstream push of the same photo
// in 64 KiB chunks and one report seal (signature, AEAD, one key wrap per device), inline.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type DeviceStorage, MemoryStorage, MIN_KDF_LIMITS, mintInvites, volunteer } from "@testigo/client-sdk";
import { NodeStorage } from "@testigo/client-sdk/node";
import { actaPhotos, startRelay, testCampaign } from "@testigo/client-sdk/testing";
import {
  BUCKET_SIZES,
  ENVELOPE_HEADER_BYTES,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  initSodium,
  PHOTO_CHUNK_PLAINTEXT_BYTES,
  randomBytes,
  sodium,
} from "@testigo/protocol";
import { median } from "./measure.js";
import { rawSealPhoto, rawSealReport } from "./raw-crypto.js";

const PHOTOS = 8;
const ROUNDS = 5;
const MIB = 1024 * 1024;
const PIN = "246810135";
/** The acta report's JSON is small: it fits bucket 0 like a status report. */
const REPORT_JSON_BYTES = 700;

interface Sample {
  readonly ours: number;
  readonly raw: number;
}

async function enrolledVolunteer(storage: DeviceStorage, code: string): Promise<volunteer.Volunteer> {
  const enrolled = await volunteer.enroll({
    storage,
    inviteCode: code,
    pin: PIN,
    limits: MIN_KDF_LIMITS,
    now: () => Date.now(),
  });
  return volunteer.Volunteer.fromStore(enrolled.store);
}

function rawActa(photo: Uint8Array, recipients: number): void {
  const s = sodium();
  const sender = generateSigningKeyPair();
  const keys = {
    signingPrivateKey: sender.privateKey,
    signingPublicKey: sender.publicKey,
    recipients: Array.from({ length: recipients }, () => generateEncryptionKeyPair()),
  };
  s.crypto_hash_sha256(photo);
  rawSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES);
  const padded = BUCKET_SIZES[0] as number;
  rawSealReport(s, randomBytes(REPORT_JSON_BYTES), padded, randomBytes(ENVELOPE_HEADER_BYTES), keys);
}

async function main(): Promise<void> {
  await initSodium();
  const photos = actaPhotos(PHOTOS).map((p) => p.bytes);
  const relay = await startRelay({});
  const work = mkdtempSync(join(tmpdir(), "testigo-bench-volunteer-"));
  try {
    const campaign = await testCampaign(relay);
    const invites = await mintInvites(await campaign.device(), { count: 2 });
    const devices = {
      memory: await enrolledVolunteer(new MemoryStorage(), invites[0]?.code as string),
      disk: await enrolledVolunteer(await NodeStorage.open(join(work, "phone")), invites[1]?.code as string),
    };
    const recipients = 1; // testCampaign's roster: one coordinator device
    const samples: Record<keyof typeof devices, Sample[]> = { memory: [], disk: [] };
    for (const photo of photos) rawActa(photo, recipients); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, photo] of photos.entries()) {
        for (const kind of ["memory", "disk"] as const) {
          let start = performance.now();
          await devices[kind].acta({ table: `${3000 + i}.1`, photos: [photo] });
          const ours = performance.now() - start;
          start = performance.now();
          rawActa(photo, recipients);
          samples[kind].push({ ours, raw: performance.now() - start });
        }
      }
    }
    const photoMiB = photos.reduce((sum, p) => sum + p.length, 0) / photos.length / MIB;
    const lines = [
      `SDK volunteer: seal and queue one acta vs raw libsodium — ${new Date().toISOString()}, ${cpus().length} CPUs, load ${loadavg()[0]?.toFixed(2)}`,
      `${photos.length} photos from acta-photos.ts (mean ${photoMiB.toFixed(2)} MiB), ${ROUNDS} rounds, median of ${ROUNDS * photos.length} interleaved samples`,
      "",
      "| outbox on | ours (ms per acta) | raw (ms) | ratio ours/raw (throughput) |",
      "|---|---:|---:|---:|",
    ];
    for (const kind of ["memory", "disk"] as const) {
      const ours = median(samples[kind].map((x) => x.ours));
      const raw = median(samples[kind].map((x) => x.raw));
      const ratio = median(samples[kind].map((x) => x.raw / x.ours));
      const label = kind === "memory" ? "MemoryStorage (no I/O)" : "NodeStorage (atomic write + fsync)";
      lines.push(`| ${label} | ${ours.toFixed(1)} | ${raw.toFixed(1)} | ${ratio.toFixed(3)} |`);
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
