// A campaign driven entirely through the `testigo` command: coordinator devices (init, or join +
// add-device + join --bundle), invites, enrolled volunteers that send status reports and actas,
// and fetches. Every secret goes through a file (--passphrase-file, --pin-file) or, for the
// operator's token, TESTIGO_RELAY_TOKEN. Each report carries unique "MARKER-<hex>" text and
// table codes, so the seized-relay scan can look for them.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CliRun, testigo, testigoOk } from "./cli.js";

export interface CoordinatorDevice {
  readonly name: string;
  readonly dir: string;
  readonly passphrase: string;
  readonly passphraseFile: string;
}

export interface SentPhoto {
  /** The file the volunteer took. */
  readonly path: string;
  readonly sha256: string;
  readonly bytes: Buffer;
  /** Text planted in its EXIF segment (synthetic photos only). */
  readonly exifMarker?: string;
}

export interface SentReport {
  readonly kind: "status" | "acta";
  readonly table: string;
  readonly text: string;
  readonly photos: readonly SentPhoto[];
}

export interface VolunteerDevice {
  readonly name: string;
  readonly dir: string;
  readonly pin: string;
  readonly pinFile: string;
  readonly pseudonym: string;
  /** What this volunteer sent, in order. */
  readonly sent: SentReport[];
}

/** One line of OUT/reports.jsonl (the fields these tests read). */
export interface ReportLine {
  readonly id: string;
  readonly kind: string;
  readonly volunteer: string;
  readonly table?: string;
  readonly text?: string;
  readonly seq: number;
  readonly photos?: { photoId: string; path: string | null; sha256: string; size: number; status: string }[];
  /** On a duress line: the kind the duress key signed. */
  readonly signedKind?: string;
  /** On a decoy's cover item (duress-and-wipe.md §2.4). */
  readonly cover?: true;
}

export interface FetchSummary {
  readonly ok: boolean;
  readonly written: number;
  readonly photos: number;
  readonly quarantined: number;
  readonly alreadyWritten: number;
  readonly waitingForPhotos: number;
  readonly quarantinedTotal: number;
}

/** Unique, greppable text: "MARKER-" and 16 random hex digits (fits a 32-character table code). */
export function marker(): string {
  return `MARKER-${randomBytes(8).toString("hex")}`;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A secret file in `secretsDir` (outside every device folder, so scans do not see it). */
function secretFile(secretsDir: string, name: string, value: string): string {
  mkdirSync(secretsDir, { recursive: true });
  const path = join(secretsDir, name);
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return path;
}

function newPassphrase(): string {
  return `passphrase ${randomBytes(12).toString("hex")}`;
}

/** A numeric 10-digit PIN: long enough that it cannot occur by chance in a scanned file's numbers. */
function newPin(): string {
  return Array.from(randomBytes(10), (b) => String(b % 10)).join("");
}

/** `coordinator init` on a new device folder: creates the campaign and registers it. */
export async function initCoordinator(
  work: string,
  name: string,
  relayUrl: string,
  relayToken: string,
): Promise<CoordinatorDevice & { campaignId: string }> {
  const passphrase = newPassphrase();
  const device = {
    name,
    dir: join(work, name),
    passphrase,
    passphraseFile: secretFile(join(work, "secrets"), `${name}.passphrase`, passphrase),
  };
  const init = await testigoOk(
    [
      "coordinator",
      "init",
      "--dir",
      device.dir,
      "--relay",
      relayUrl,
      "--passphrase-file",
      device.passphraseFile,
      "--json",
    ],
    { TESTIGO_RELAY_TOKEN: relayToken },
  );
  const { campaignId } = JSON.parse(init.stdout) as { campaignId: string };
  return { ...device, campaignId };
}

/** A second coordinator device: `join` (request), `add-device` on the first, `join --bundle`. */
export async function joinCoordinator(
  work: string,
  name: string,
  relayUrl: string,
  first: CoordinatorDevice,
): Promise<CoordinatorDevice> {
  const passphrase = newPassphrase();
  const device = {
    name,
    dir: join(work, name),
    passphrase,
    passphraseFile: secretFile(join(work, "secrets"), `${name}.passphrase`, passphrase),
  };
  const request = await testigoOk([
    "coordinator",
    "join",
    "--dir",
    device.dir,
    "--relay",
    relayUrl,
    "--passphrase-file",
    device.passphraseFile,
  ]);
  const requestFile = join(work, `${name}.request.json`);
  writeFileSync(requestFile, request.stdout);
  const bundleFile = join(work, `${name}.bundle.json`);
  await testigoOk([
    "coordinator",
    "add-device",
    "--dir",
    first.dir,
    "--request",
    requestFile,
    "--out",
    bundleFile,
    "--passphrase-file",
    first.passphraseFile,
  ]);
  await testigoOk([
    "coordinator",
    "join",
    "--dir",
    device.dir,
    "--bundle",
    bundleFile,
    "--passphrase-file",
    device.passphraseFile,
  ]);
  return device;
}

/** `coordinator invite --count N`: the invite codes, one per line. */
export async function invite(coordinator: CoordinatorDevice, count: number): Promise<string[]> {
  const run = await testigoOk([
    "coordinator",
    "invite",
    "--dir",
    coordinator.dir,
    "--count",
    String(count),
    "--passphrase-file",
    coordinator.passphraseFile,
  ]);
  return run.stdout.trim().split("\n");
}

/** `volunteer enroll` into a new folder; returns the device with its pseudonym. */
export async function enroll(work: string, name: string, code: string): Promise<VolunteerDevice> {
  const pin = newPin();
  const pinFile = secretFile(join(work, "secrets"), `${name}.pin`, pin);
  const dir = join(work, name);
  const run = await testigoOk(["volunteer", "enroll", "--dir", dir, "--invite", code, "--pin-file", pinFile, "--json"]);
  const { pseudonym } = JSON.parse(run.stdout) as { pseudonym: string };
  return { name, dir, pin, pinFile, pseudonym, sent: [] };
}

/** `volunteer report` with a unique marker as table code and text. */
export async function sendStatus(volunteer: VolunteerDevice): Promise<CliRun> {
  const table = marker();
  const text = `polls opened ${marker()}`;
  const run = await testigoOk([
    "volunteer",
    "report",
    "--dir",
    volunteer.dir,
    "--table",
    table,
    "--text",
    text,
    "--pin-file",
    volunteer.pinFile,
  ]);
  volunteer.sent.push({ kind: "status", table, text, photos: [] });
  return run;
}

/** Writes a photo where a volunteer would keep it (outside the device folder). */
export function photoFile(dir: string, name: string, bytes: Uint8Array, exifMarker?: string): SentPhoto {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, bytes);
  const buffer = readFileSync(path);
  return { path, bytes: buffer, sha256: sha256Hex(buffer), ...(exifMarker === undefined ? {} : { exifMarker }) };
}

/** `volunteer acta --table T --text X PHOTO…` with unique markers. */
export async function sendActa(volunteer: VolunteerDevice, photos: readonly SentPhoto[]): Promise<CliRun> {
  const table = marker();
  const text = `acta printed ${marker()}`;
  const run = await testigoOk([
    "volunteer",
    "acta",
    "--dir",
    volunteer.dir,
    "--table",
    table,
    "--text",
    text,
    "--pin-file",
    volunteer.pinFile,
    ...photos.map((p) => p.path),
  ]);
  volunteer.sent.push({ kind: "acta", table, text, photos });
  return run;
}

/** The arguments of `coordinator fetch --dir … --out OUT --passphrase-file … --json`, then `extra`. */
export function fetchArgs(coordinator: CoordinatorDevice, out: string, ...extra: string[]): string[] {
  const dir = coordinator.dir;
  return [
    "coordinator",
    "fetch",
    "--dir",
    dir,
    "--out",
    out,
    "--passphrase-file",
    coordinator.passphraseFile,
    "--json",
    ...extra,
  ];
}

/** Bytes of the photo chunks a fetch keeps in OUT/partial (0 while the folder does not exist). */
export function partialBytes(out: string): number {
  const partial = join(out, "partial");
  try {
    return readdirSync(partial).reduce((sum, name) => sum + statSync(join(partial, name)).size, 0);
  } catch {
    return 0;
  }
}

/**
 * `coordinator fetch --out OUT --json` until no acta waits for its photos (at most `rounds`
 * runs). Exit 3 ("relay unreachable (or overloaded) … run the command again", e.g. RATE_LIMITED)
 * is run again, as documented, after the Retry-After the message names (at most `retries` times).
 */
export async function fetchAll(
  coordinator: CoordinatorDevice,
  out: string,
  rounds = 5,
  retries = 10,
): Promise<FetchSummary[]> {
  const summaries: FetchSummary[] = [];
  let retried = 0;
  for (let round = 0; round < rounds; ) {
    const args = ["coordinator", "fetch", "--dir", coordinator.dir, "--out", out];
    const run = await testigo([...args, "--passphrase-file", coordinator.passphraseFile, "--json"]);
    if (run.code === 3 && retried < retries) {
      retried++;
      const seconds = Number(/retry in (\d+) s/.exec(run.stdout)?.[1] ?? "1");
      await new Promise((resolve) => setTimeout(resolve, (seconds + 1) * 1_000));
      continue;
    }
    if (run.code !== 0) {
      throw new Error(
        `testigo ${args.join(" ")} exited ${run.code ?? run.signal}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`,
      );
    }
    const summary = JSON.parse(run.stdout) as FetchSummary;
    summaries.push(summary);
    round++;
    if (summary.waitingForPhotos === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return summaries;
}

/** OUT/reports.jsonl, one object per line (the file must end with a complete line). */
export function readReports(out: string): ReportLine[] {
  const text = readFileSync(join(out, "reports.jsonl"), "utf8");
  if (text === "") return [];
  if (!text.endsWith("\n")) throw new Error("reports.jsonl does not end with a complete line");
  return text
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as ReportLine);
}
