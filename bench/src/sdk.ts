// The coordinator SDK benchmark: `fetchInbox` draining 1,000 status reports and 100 acta photos
// from a real relay process on loopback, against the bare libsodium opens of the same amount of
// data (DESIGN.md §6: a ratio, measured in one run). Not a test: nothing here asserts.
//
//   node bench/dist/sdk.js            (after `npx tsc -b`)
//
// Ours is the whole coordinator path: HTTP inbox pages, envelope opening (unwrap, decrypt,
// verify, schema), sender lookup, photo chunks over HTTP, secretstream + SHA-256 check, output
// writes, acks. Raw is what no coordinator can skip: per report X25519 + BLAKE2b + two
// XChaCha20-Poly1305 decryptions + one Ed25519 verification of the same padded size, per photo a
// secretstream pull of the same size with an incremental SHA-256. The ratio (ours/raw
// throughput) is therefore the cost of the network, the relay and the SDK around the crypto.
// The relay's rate limit is lifted: this measures the SDK, not the limiter.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
// The SDK from its build, like the test-only helpers beside it: one copy of every type.
import { type FetchOutput, fetchInbox, MemoryOutput, mintInvites } from "@testigo/client-sdk";
import { NodeFetchOutput } from "@testigo/client-sdk/node";
import { actaPhotos, startRelay, type TestCampaign, TestVolunteer, testCampaign } from "@testigo/client-sdk/testing";
import {
  BUCKET_SIZES,
  bucketFor,
  ENVELOPE_HEADER_BYTES,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  INNER_FRAMING_BYTES,
  initSodium,
  PHOTO_CHUNK_PLAINTEXT_BYTES,
  randomBytes,
  sodium,
} from "@testigo/protocol";
import { median } from "./measure.js";
import { rawOpenAndHashPhoto, rawOpenReport, rawSealPhoto, rawSealReport } from "./raw-crypto.js";

const VOLUNTEERS = 10;
const REPORTS = 1_000;
const PHOTOS = 100;
/** Rounds per output kind; each round drains a freshly filled inbox once. */
const ROUNDS = 3;
const RECIPIENTS = 1;
const RELAY_ENV = { TESTIGO_RATE_CAPACITY: "1000000", TESTIGO_RATE_REFILL_PER_SECOND: "1000000" };
const MIB = 1024 * 1024;

interface Round {
  readonly seconds: number;
  readonly rawSeconds: number;
}

/** Fills the inbox: REPORTS status reports and PHOTOS actas of one photo, spread over the volunteers. */
async function fill(volunteers: readonly TestVolunteer[], photos: readonly Uint8Array[]): Promise<void> {
  await Promise.all(
    volunteers.map(async (volunteer, v) => {
      for (let i = v; i < REPORTS; i += volunteers.length) await volunteer.status(`${1000 + i}.1`, `report ${i}`);
      for (let i = v; i < PHOTOS; i += volunteers.length) {
        await volunteer.acta(`${2000 + i}.1`, [photos[i % photos.length] as Uint8Array]);
      }
    }),
  );
}

/** The raw side: the same number of opens, of the same padded size and photo sizes. */
function rawWork(reportJsonBytes: number, photos: readonly Uint8Array[]): () => void {
  const s = sodium();
  const devices = Array.from({ length: RECIPIENTS }, () => generateEncryptionKeyPair());
  const sender = generateSigningKeyPair();
  const keys = { signingPrivateKey: sender.privateKey, signingPublicKey: sender.publicKey, recipients: devices };
  const padded = BUCKET_SIZES[bucketFor(INNER_FRAMING_BYTES + reportJsonBytes)] as number;
  const message = randomBytes(reportJsonBytes);
  const header = randomBytes(ENVELOPE_HEADER_BYTES);
  const reports = Array.from({ length: REPORTS }, () => rawSealReport(s, message, padded, header, keys));
  const sealedPhotos = Array.from({ length: PHOTOS }, (_, i) =>
    rawSealPhoto(s, photos[i % photos.length] as Uint8Array, PHOTO_CHUNK_PLAINTEXT_BYTES),
  );
  return () => {
    for (const report of reports) rawOpenReport(s, report, reportJsonBytes, 0, keys);
    for (const photo of sealedPhotos) rawOpenAndHashPhoto(s, photo);
  };
}

async function drain(campaign: TestCampaign, output: FetchOutput): Promise<number> {
  const device = await campaign.device();
  const start = performance.now();
  const summary = await fetchInbox(device, output, { limit: 500 });
  const seconds = (performance.now() - start) / 1000;
  if (summary.written !== REPORTS + PHOTOS || summary.photos !== PHOTOS || summary.quarantined !== 0) {
    throw new Error(`bench: the fetch did not write everything: ${JSON.stringify(summary)}`);
  }
  return seconds;
}

async function main(): Promise<void> {
  await initSodium();
  const photos = actaPhotos(PHOTOS).map((p) => p.bytes);
  const photoBytes = photos.reduce((sum, p) => sum + p.length, 0);
  const relay = await startRelay({ env: RELAY_ENV });
  const work = mkdtempSync(join(tmpdir(), "testigo-bench-sdk-"));
  try {
    const campaign = await testCampaign(relay);
    const invites = await mintInvites(await campaign.device(), { count: VOLUNTEERS });
    const volunteers = await Promise.all(invites.map((i) => TestVolunteer.enroll(i.code, campaign.campaignId)));
    await fetchInbox(await campaign.device(), new MemoryOutput()); // enrollments: not timed
    // The JSON of one status report as TestVolunteer builds it, for the raw side's sizes.
    const sample = JSON.stringify(volunteers[0]?.message("status", "1000.1", "report 100") ?? {});
    const raw = rawWork(new TextEncoder().encode(sample).length, photos);
    raw(); // warm-up

    const rounds: Record<"memory" | "disk", Round[]> = { memory: [], disk: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of ["memory", "disk"] as const) {
        await fill(volunteers, photos);
        const output = kind === "memory" ? new MemoryOutput() : await NodeFetchOutput.open(join(work, `out-${round}`));
        const seconds = await drain(campaign, output);
        const start = performance.now();
        raw();
        rounds[kind].push({ seconds, rawSeconds: (performance.now() - start) / 1000 });
      }
    }

    const items = REPORTS + PHOTOS;
    const lines = [
      `SDK coordinator fetch vs raw libsodium opens — ${new Date().toISOString()}, ${cpus().length} CPUs, load ${loadavg()[0]?.toFixed(2)}`,
      `${REPORTS} status reports + ${PHOTOS} actas with ${(photoBytes / MIB).toFixed(1)} MiB of photos (${photos.length} photos from acta-photos.ts), ${ROUNDS} rounds per output, median`,
      "",
      "| fetch into | ours (s) | ours (items/s) | ours (photo MiB/s) | raw opens (s) | ratio ours/raw |",
      "|---|---:|---:|---:|---:|---:|",
    ];
    for (const kind of ["memory", "disk"] as const) {
      const ours = median(rounds[kind].map((r) => r.seconds));
      const rawSeconds = median(rounds[kind].map((r) => r.rawSeconds));
      const ratio = median(rounds[kind].map((r) => r.rawSeconds / r.seconds));
      const label = kind === "memory" ? "MemoryOutput" : "OUT folder on disk (fsynced)";
      lines.push(
        `| ${label} | ${ours.toFixed(2)} | ${Math.round(items / ours)} | ${(photoBytes / MIB / ours).toFixed(1)} | ${rawSeconds.toFixed(3)} | ${ratio.toFixed(3)} |`,
      );
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await relay.stop({ removeData: true });
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
