// The crypto benchmark: the protocol's constructions against the bare libsodium calls they need,
// in one process and one run, reported as ratios (DESIGN.md §6). Not a test: nothing here asserts.
//
//   node bench/dist/crypto.js            (after `npx tsc -b`)
//
// Prints a Markdown table and writes it to bench/results/crypto.md.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  BUCKET_SIZES,
  ENVELOPE_HEADER_BYTES,
  type EncryptionKeyPair,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  INNER_FRAMING_BYTES,
  initSodium,
  openEnvelope,
  openPhoto,
  PHOTO_CHUNK_PLAINTEXT_BYTES,
  photoSha256,
  REPORT_KIND,
  randomBytes,
  readEnvelopeHeader,
  type StatusReport,
  sealEnvelope,
  sealPhoto,
  sealPhotoAsync,
  sha256,
  toBase64url,
  wrapKey,
} from "@testigo/protocol";
import { type BenchRow, markdownTable } from "./markdown.js";
import { type Comparison, compare, type MeasureOptions, median } from "./measure.js";
import {
  rawHashAndSealPhoto,
  rawOpenAndHashPhoto,
  rawOpenReport,
  rawSealPhoto,
  rawSealReport,
  rawWrapKey,
} from "./raw-crypto.js";

const PHOTO_BYTES = 2 * 1024 * 1024;
/** Coordinator devices a report is sealed to. */
const RECIPIENTS = 3;

const SMALL: MeasureOptions = { warmup: 200, iterations: 60, runs: 45 };
const PHOTO: MeasureOptions = { warmup: 5, iterations: 2, runs: 45 };

const benchRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * 2 MiB of real acta scans from ../shared/data/actas/images (DESIGN.md §7), concatenated; random
 * bytes when the corpus is absent. Throughput does not depend on the content; realism is cheap.
 */
function photoBytes(): { bytes: Uint8Array; source: string } {
  const images = resolve(benchRoot, "..", "..", "shared", "data", "actas", "images");
  const out = new Uint8Array(PHOTO_BYTES);
  let filled = 0;
  try {
    for (const name of readdirSync(images).sort()) {
      if (filled >= PHOTO_BYTES) break;
      const file = readFileSync(join(images, name));
      const take = Math.min(file.length, PHOTO_BYTES - filled);
      out.set(file.subarray(0, take), filled);
      filled += take;
    }
  } catch {
    // No corpus on this machine: fall through to random bytes.
  }
  if (filled < PHOTO_BYTES) return { bytes: randomBytes(PHOTO_BYTES), source: "random bytes" };
  return { bytes: out, source: "real acta scans (../shared/data/actas/images)" };
}

function keyWrapRow(): BenchRow {
  const s = sodiumOrThrow();
  const recipient = generateEncryptionKeyPair();
  const contentKey = randomBytes(32);
  const ad = randomBytes(35);
  return {
    operation: "key wrap (1 recipient)",
    comparison: compare(
      () => wrapKey(contentKey, recipient.publicKey, ad),
      () => rawWrapKey(s, contentKey, recipient.publicKey, ad),
      SMALL,
    ),
  };
}

/**
 * A status report with the longest text allowed: its inner plaintext fills bucket 0 (1 KiB),
 * the size of every short report on the wire.
 */
function statusReport(campaignId: string): StatusReport {
  return {
    kind: REPORT_KIND.status,
    v: 1,
    messageId: toBase64url(randomBytes(16)),
    campaignId,
    seq: 1,
    sentAt: Date.now(),
    table: "1401023.3",
    text: "x".repeat(500),
  };
}

function reportRows(): BenchRow[] {
  const s = sodiumOrThrow();
  const campaignId = toBase64url(randomBytes(16));
  const sender = generateSigningKeyPair();
  const devices = Array.from({ length: RECIPIENTS }, () => generateEncryptionKeyPair());
  const device: EncryptionKeyPair = devices[0] as EncryptionKeyPair;
  const recipients = devices.map((pair) => ({ publicKey: pair.publicKey }));
  const report = statusReport(campaignId);
  const sealed = sealEnvelope({ campaignId, sender, recipients, message: report });
  const bucket = readEnvelopeHeader(sealed.envelope).bucket;
  const padded = BUCKET_SIZES[bucket] as number;
  const openOptions = { campaignId, recipient: device, senderKnown: () => true };

  // The raw side signs and encrypts a message of the same JSON length into the same bucket.
  const json = new TextEncoder().encode(JSON.stringify(report));
  const header = sealed.envelope.slice(0, ENVELOPE_HEADER_BYTES);
  const rawKeys = { signingPrivateKey: sender.privateKey, signingPublicKey: sender.publicKey, recipients: devices };
  const rawSealed = rawSealReport(s, json, padded, header, rawKeys);
  // Both sides must actually work before they are timed.
  if (openEnvelope(sealed.envelope, openOptions).message.messageId !== report.messageId) {
    throw new Error("bench: the envelope did not round-trip");
  }
  rawOpenReport(s, rawSealed, json.length, 0, rawKeys);

  const what = `1 KiB (bucket ${bucket}: ${padded} B = ${INNER_FRAMING_BYTES} B framing + ${json.length} B JSON + padding)`;
  return [
    {
      operation: `report seal (sealEnvelope), ${what}, ${RECIPIENTS} coordinator devices`,
      comparison: compare(
        () => sealEnvelope({ campaignId, sender, recipients, message: report }),
        () => rawSealReport(s, json, padded, header, rawKeys),
        SMALL,
      ),
    },
    {
      operation: "report open (openEnvelope) by one of the 3 devices",
      comparison: compare(
        () => openEnvelope(sealed.envelope, openOptions),
        () => rawOpenReport(s, rawSealed, json.length, 0, rawKeys),
        SMALL,
      ),
    },
  ];
}

async function timeRunAsync(fn: () => unknown, iterations: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await fn();
  return iterations / ((performance.now() - start) / 1000);
}

/** compare() (measure.ts) for functions that return promises: each call is awaited before the next. */
async function compareAsync(ours: () => unknown, raw: () => unknown, options: MeasureOptions): Promise<Comparison> {
  for (let i = 0; i < options.warmup; i++) {
    await ours();
    await raw();
  }
  const oursSamples: number[] = [];
  const rawSamples: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    if (run % 2 === 0) {
      oursSamples.push(await timeRunAsync(ours, options.iterations));
      rawSamples.push(await timeRunAsync(raw, options.iterations));
    } else {
      rawSamples.push(await timeRunAsync(raw, options.iterations));
      oursSamples.push(await timeRunAsync(ours, options.iterations));
    }
  }
  const ratios = oursSamples.map((value, run) => value / (rawSamples[run] as number));
  return {
    ours: { opsPerSecond: median(oursSamples), samples: oursSamples },
    raw: { opsPerSecond: median(rawSamples), samples: rawSamples },
    ratio: median(ratios),
  };
}

/** The asynchronous path (photo.ts: photoSha256 with WebCrypto, sealPhotoAsync). */
async function asyncPhotoRows(photo: Uint8Array): Promise<BenchRow[]> {
  const s = sodiumOrThrow();
  const sealed = await sealPhotoAsync(photo);
  if (openPhoto(sealed.ref, sealed.chunks).length !== photo.length) throw new Error("bench: photo did not round-trip");
  if (!s.memcmp(await photoSha256(photo), sha256(photo))) throw new Error("bench: WebCrypto and libsodium disagree");
  const chunks = sealed.ref.chunkCount;
  const rawChunks = Math.ceil(photo.length / PHOTO_CHUNK_PLAINTEXT_BYTES);
  return [
    {
      operation: `photo seal (sealPhotoAsync: SHA-256 by WebCrypto), 2 MiB: SHA-256 + ${chunks} chunks (bucketed) vs raw push of ${rawChunks}`,
      comparison: await compareAsync(
        () => sealPhotoAsync(photo),
        () => rawSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES),
        PHOTO,
      ),
      bytesPerOp: PHOTO_BYTES,
      goal: 0.9,
    },
    {
      operation: `photo seal (sealPhotoAsync), 2 MiB: ${chunks} chunks vs raw libsodium SHA-256 + push of ${rawChunks} (same work)`,
      comparison: await compareAsync(
        () => sealPhotoAsync(photo),
        () => rawHashAndSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES),
        PHOTO,
      ),
      bytesPerOp: PHOTO_BYTES,
    },
    {
      operation: "SHA-256 of 2 MiB: photoSha256 (WebCrypto) vs libsodium crypto_hash_sha256",
      comparison: await compareAsync(
        () => photoSha256(photo),
        () => s.crypto_hash_sha256(photo),
        PHOTO,
      ),
      bytesPerOp: PHOTO_BYTES,
    },
  ];
}

function photoRows(photo: Uint8Array): BenchRow[] {
  const s = sodiumOrThrow();
  const digest = sha256(photo);
  const sealed = sealPhoto(photo);
  const sealedRaw = rawSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES);
  if (openPhoto(sealed.ref, sealed.chunks).length !== photo.length) throw new Error("bench: photo did not round-trip");
  const chunks = sealed.ref.chunkCount;
  const rawChunks = sealedRaw.chunks.length;
  return [
    {
      operation: `photo seal (sealPhoto), 2 MiB: SHA-256 + ${chunks} chunks (bucketed) vs raw push of ${rawChunks}`,
      comparison: compare(
        () => sealPhoto(photo),
        () => rawSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES),
        PHOTO,
      ),
      bytesPerOp: PHOTO_BYTES,
      goal: 0.9,
    },
    {
      operation: `photo seal (sealPhoto, SHA-256 passed in), 2 MiB: ${chunks} chunks vs raw push of ${rawChunks}`,
      comparison: compare(
        () => sealPhoto(photo, { sha256: digest }),
        () => rawSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES),
        PHOTO,
      ),
      bytesPerOp: PHOTO_BYTES,
      goal: 0.9,
    },
    {
      operation: `photo seal (sealPhoto), 2 MiB: ${chunks} chunks vs raw SHA-256 + push of ${rawChunks} (same work)`,
      comparison: compare(
        () => sealPhoto(photo),
        () => rawHashAndSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES),
        PHOTO,
      ),
      bytesPerOp: PHOTO_BYTES,
    },
    {
      operation: `photo open (openPhoto), 2 MiB: ${chunks} chunks + SHA-256 check vs raw pull of ${rawChunks} + SHA-256`,
      comparison: compare(
        () => openPhoto(sealed.ref, sealed.chunks),
        () => rawOpenAndHashPhoto(s, sealedRaw),
        PHOTO,
      ),
      bytesPerOp: PHOTO_BYTES,
    },
    {
      operation: "calibration: raw secretstream push against itself (noise floor)",
      comparison: compare(
        () => rawSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES),
        () => rawSealPhoto(s, photo, PHOTO_CHUNK_PLAINTEXT_BYTES),
        PHOTO,
      ),
      bytesPerOp: PHOTO_BYTES,
    },
  ];
}

let loaded: Awaited<ReturnType<typeof initSodium>> | undefined;
function sodiumOrThrow() {
  if (loaded === undefined) throw new Error("initSodium() first");
  return loaded;
}

export async function runCryptoBench(): Promise<string> {
  loaded = await initSodium();
  const photo = photoBytes();
  const rows = [...reportRows(), keyWrapRow(), ...photoRows(photo.bytes), ...(await asyncPhotoRows(photo.bytes))];
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const report = [
    "# Crypto benchmark: Testigo protocol vs raw libsodium",
    "",
    "Command: `npx tsc -b && node bench/dist/crypto.js` (from the repository root; rewrites this file).",
    "",
    `Node ${process.version}, libsodium ${loaded.sodium_version_string()} (libsodium-wrappers-sumo, WebAssembly), ${cpu}, ${new Date().toISOString().slice(0, 10)}.`,
    `Median of interleaved runs (small messages: ${SMALL.runs} runs of ${SMALL.iterations} ops; photos: ${PHOTO.runs} runs of ${PHOTO.iterations}); ratio = median of per-run-pair ratios. Load average at start: ${loadavg()[0]?.toFixed(2)} on ${cpus().length} CPUs. Photo content: ${photo.source}.`,
    "",
    markdownTable(rows),
    "",
  ].join("\n");
  return report;
}

/** Runs the benchmark, prints the table and writes it to bench/results/crypto.md. */
export async function runAndWriteCryptoBench(): Promise<void> {
  const report = await runCryptoBench();
  process.stdout.write(`${report}\n`);
  const out = join(benchRoot, "results", "crypto.md");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, report);
  process.stdout.write(`written to ${out}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runAndWriteCryptoBench();
}
