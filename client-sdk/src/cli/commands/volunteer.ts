// `testigo volunteer …` subcommands (docs/cli-volunteer.md). The device folder is a NodeStorage;
// everything else is the SDK's volunteer core.
import { readFile } from "node:fs/promises";
import { InviteCodeInvalid, initSodium, isProtocolError, TABLE_CODE_PATTERN } from "@testigo/protocol";
import { InvalidPin, InvalidUnlockLimit } from "../../crypto/key-slots.js";
import { DeviceFolderMissing, NodeStorage } from "../../storage/node-storage.js";
import { InsecureRelayUrl, RelayRefused, RelayUnreachable } from "../../transport/errors.js";
import { enroll } from "../../volunteer/enroll.js";
import { VolunteerError, WrongPin } from "../../volunteer/errors.js";
import type { SyncEvent, SyncResult } from "../../volunteer/sync.js";
import { DEFAULT_FLUSH_BUDGET_MS, panic, Volunteer } from "../../volunteer/volunteer.js";
import { booleanFlag, type ParsedArgs, requiredFlag, stringFlag } from "../args.js";
import { CliError, usageError } from "../cli-error.js";
import type { CliContext, Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { type Progress, progressBar } from "../progress.js";
import { readSecret } from "../secrets.js";

const DEFAULT_SEND_TIMEOUT_S = 10;
const DEFAULT_SYNC_TIMEOUT_S = 60;
const DEFAULT_FLUSH_TIMEOUT_S = DEFAULT_FLUSH_BUDGET_MS / 1000;
const MAX_TIMEOUT_S = 3600;

const pinFlags = { dir: { type: "string" }, "pin-file": { type: "string" } } as const;
const timeoutFlag = { timeout: { type: "string" } } as const;

const PIN_HELP = `The PIN comes from --pin-file FILE, else TESTIGO_PIN, else a hidden prompt on a terminal.`;
const TIMEOUT_HELP = (seconds: number) =>
  `  --timeout S   seconds to keep retrying an unreachable relay before leaving the rest queued (default ${seconds})`;

function readPin(args: ParsedArgs, context: CliContext): Promise<string> {
  return readSecret(
    { file: stringFlag(args, "pin-file"), envVar: "TESTIGO_PIN", prompt: "PIN", fileFlag: "--pin-file" },
    context,
  );
}

function timeoutMs(args: ParsedArgs, fallbackS: number): number {
  const text = stringFlag(args, "timeout");
  if (text === undefined) return fallbackS * 1000;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || value > MAX_TIMEOUT_S) {
    throw usageError(`--timeout must be a number of seconds from 0 to ${MAX_TIMEOUT_S}`);
  }
  return Math.round(value * 1000);
}

/** Every error a volunteer command can meet, as something a person can act on. */
function explain(error: unknown, relayUrl?: string): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof WrongPin) return new CliError("WRONG_PIN", error.message, EXIT.wrongSecret);
  if (error instanceof InvalidPin) return new CliError("INVALID_PIN", error.message, EXIT.usage);
  if (error instanceof InvalidUnlockLimit) return new CliError(error.code, error.message, EXIT.usage);
  if (error instanceof VolunteerError) {
    const exit =
      error.code === "ROSTER_MISMATCH" || error.code === "RELAY_LIED"
        ? EXIT.failure
        : error.code === "WRONG_PIN"
          ? EXIT.wrongSecret
          : EXIT.badState;
    return new CliError(error.code, error.message, exit);
  }
  if (error instanceof DeviceFolderMissing) {
    return new CliError(
      "NOT_ENROLLED",
      `no enrolled device in ${error.dir} (no such folder): check --dir, or run \`testigo volunteer enroll --dir DIR --invite CODE\` first`,
      EXIT.badState,
    );
  }
  if (error instanceof InviteCodeInvalid) return new CliError(error.code, error.message, EXIT.usage);
  if (error instanceof InsecureRelayUrl) return new CliError(error.code, error.message, EXIT.usage);
  if (error instanceof RelayUnreachable) {
    return new CliError(
      error.code,
      `relay unreachable at ${relayUrl ?? error.relayUrl}: ${error.message}`,
      EXIT.relayUnreachable,
    );
  }
  if (error instanceof RelayRefused) return new CliError(error.code, error.message, EXIT.refused);
  if (isProtocolError(error)) return new CliError(error.code, error.message, EXIT.failure);
  return new CliError("UNEXPECTED", `unexpected failure: ${error instanceof Error ? error.message : String(error)}`);
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw explain(error);
  }
}

async function openVolunteer(args: ParsedArgs, context: CliContext): Promise<Volunteer> {
  const dir = requiredFlag(args, "dir");
  const pin = await readPin(args, context);
  await initSodium();
  return guarded(async () => Volunteer.open(await NodeStorage.open(dir, { create: false }), pin, { now: context.now }));
}

/** Progress bars for photo uploads, on a terminal only. */
function progressReporter(context: CliContext, enabled: boolean): (event: SyncEvent) => void {
  let bar: Progress | undefined;
  return (event) => {
    if (event.type === "photo-start") {
      bar = progressBar(context.stderr, `photo ${event.id.slice(0, 6)}`, event.total, enabled);
      bar.update(event.done);
    } else if (event.type === "chunk-sent") bar?.update(event.done);
    else if (event.type === "photo-done") {
      bar?.finish();
      bar = undefined;
    }
  };
}

/** Runs a sync and reports it; returns the exit code. */
async function syncAndReport(
  volunteer: Volunteer,
  context: CliContext,
  budgetMs: number,
  what: string,
  json: boolean,
): Promise<{ exit: number; result: SyncResult }> {
  const result = await guarded(() => volunteer.sync({ budgetMs, onEvent: progressReporter(context, !json) }));
  if (!json) {
    for (const refused of result.refused) {
      context.stderr.write(
        `testigo: the relay refused an item for good (${refused.code}); it is kept but not sent again\n`,
      );
    }
    for (const control of result.controls) {
      if (control.kind === "notice") context.stdout.write(`notice from the coordinators: ${control.text ?? ""}\n`);
    }
  }
  if (result.unreachable !== undefined) {
    context.stderr.write(
      `testigo: relay unreachable at ${volunteer.identity.relayUrl}: ${what} kept in the outbox and will be sent by \`testigo volunteer sync\`\n`,
    );
    return { exit: EXIT.relayUnreachable, result };
  }
  if (result.waitingForKeys === true) {
    context.stderr.write(
      "testigo: the coordinators have not published current keys yet: reports stay in the outbox; run `testigo volunteer sync` later\n",
    );
  }
  return { exit: EXIT.ok, result };
}

const enrollCommand: Command = {
  path: ["volunteer", "enroll"],
  summary: "enroll this device from an invite code",
  usage: "testigo volunteer enroll --dir DIR --invite CODE [--pin-file F] [--duress-pin-file F]",
  help: [
    "Checks the relay's roster against the fingerprint in the invite (the relay cannot substitute keys),",
    "makes this device's keys, redeems the invite, stores everything encrypted under the PIN and sends",
    "an `enrolled` notice to the coordinators. Prints the device's pseudonym.",
    "",
    "  --dir DIR              the device folder (created, owner-only)",
    "  --invite CODE          the invite code (T1-…)",
    "  --pin-file F           the PIN (at least 6 characters)",
    "  --duress-pin-file F    a second PIN that opens a harmless decoy (or TESTIGO_DURESS_PIN)",
    "  --keep-sent            keep reports and photos on the device after the relay accepted them",
    "  --max-failed-unlocks N erase the device after N wrong PINs in a row (default 10, 1-1000)",
    "  --checkin-interval M   minutes between automatic check-ins sent by sync (default 15; 0: none)",
    "  --json                 print { pseudonym, relay, campaign, sent }",
    TIMEOUT_HELP(DEFAULT_SEND_TIMEOUT_S),
    "",
    PIN_HELP,
  ].join("\n"),
  flags: {
    ...pinFlags,
    ...timeoutFlag,
    invite: { type: "string" },
    "duress-pin-file": { type: "string" },
    "keep-sent": { type: "boolean" },
    "max-failed-unlocks": { type: "string" },
    "checkin-interval": { type: "string" },
    json: { type: "boolean" },
  },
  async run(args, context) {
    const dir = requiredFlag(args, "dir");
    const inviteCode = requiredFlag(args, "invite");
    const maxFailedUnlocks = wholeNumberFlag(args, "max-failed-unlocks", 1, 1000);
    const checkinMinutes = wholeNumberFlag(args, "checkin-interval", 0, 24 * 60);
    const json = booleanFlag(args, "json");
    const budgetMs = timeoutMs(args, DEFAULT_SEND_TIMEOUT_S);
    const pin = await readPin(args, context);
    const duressFile = stringFlag(args, "duress-pin-file");
    const duressPin =
      duressFile !== undefined || (context.env.TESTIGO_DURESS_PIN ?? "") !== ""
        ? await readSecret(
            { file: duressFile, envVar: "TESTIGO_DURESS_PIN", prompt: "duress PIN", fileFlag: "--duress-pin-file" },
            context,
          )
        : undefined;
    await initSodium();
    const enrolled = await guarded(async () =>
      enroll({
        storage: await NodeStorage.open(dir),
        inviteCode,
        pin,
        ...(duressPin === undefined ? {} : { duressPin }),
        keepSent: booleanFlag(args, "keep-sent"),
        ...(maxFailedUnlocks === undefined ? {} : { maxFailedUnlocks }),
        ...(checkinMinutes === undefined ? {} : { checkinIntervalMs: checkinMinutes * 60_000 }),
        now: context.now,
      }),
    );
    const volunteer = await guarded(() => Volunteer.fromStore(enrolled.store, { now: context.now }));
    const { exit, result } = await syncAndReport(volunteer, context, budgetMs, "the enrollment notice is", json);
    if (json) {
      context.stdout.write(
        `${JSON.stringify({ ok: true, pseudonym: enrolled.pseudonym, relay: enrolled.relayUrl, campaign: enrolled.campaignId, sent: result.unreachable === undefined })}\n`,
      );
    } else {
      context.stdout.write(`${enrolled.pseudonym}\n`);
    }
    return exit;
  },
};

function wholeNumberFlag(args: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const text = stringFlag(args, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max)
    throw usageError(`--${name} must be a whole number from ${min} to ${max}`);
  return value;
}

function checkTable(table: string): string {
  if (!TABLE_CODE_PATTERN.test(table)) throw usageError("--table must be 1-32 of A-Z a-z 0-9 . -");
  return table;
}

const reportCommand: Command = {
  path: ["volunteer", "report"],
  summary: "send a status report (kept in the outbox until the relay has it)",
  usage: "testigo volunteer report --dir DIR --table CODE --text TEXT [--pin-file F]",
  help: [
    "Seals the report, writes it to the outbox, then tries to send it. If the relay is unreachable the",
    "report stays in the outbox (exit code 3) and `testigo volunteer sync` sends it later.",
    "",
    "  --table CODE   the voting table (1-32 of A-Z a-z 0-9 . -)",
    "  --text TEXT    what happened (at most 500 characters)",
    TIMEOUT_HELP(DEFAULT_SEND_TIMEOUT_S),
    "",
    PIN_HELP,
  ].join("\n"),
  flags: { ...pinFlags, ...timeoutFlag, table: { type: "string" }, text: { type: "string" } },
  async run(args, context) {
    const table = checkTable(requiredFlag(args, "table"));
    const text = stringFlag(args, "text");
    if (text === undefined) throw usageError("--text is required");
    const budgetMs = timeoutMs(args, DEFAULT_SEND_TIMEOUT_S);
    const volunteer = await openVolunteer(args, context);
    await guarded(() => volunteer.report(table, text));
    const { exit } = await syncAndReport(volunteer, context, budgetMs, "the report is", false);
    if (exit === EXIT.ok) context.stdout.write("sent\n");
    return exit;
  },
};

const actaCommand: Command = {
  path: ["volunteer", "acta"],
  summary: "send photos of an acta (encrypted on the device first, then uploaded, resumable)",
  usage: "testigo volunteer acta --dir DIR --table CODE PHOTO... [--pin-file F]",
  help: [
    "Reads each PHOTO file, encrypts it into chunks on the device, queues the acta, then sends:",
    "the acta's envelope first, then the photo chunks (a progress bar on a terminal). An interrupted",
    "upload resumes with `testigo volunteer sync` at the first chunk the relay lacks.",
    "",
    "  --table CODE      the voting table",
    "  --text TEXT       an optional note",
    "  --tallies FILE    optional JSON object of option code → votes (e.g. read from the acta's QR code)",
    TIMEOUT_HELP(DEFAULT_SEND_TIMEOUT_S),
    "",
    PIN_HELP,
  ].join("\n"),
  flags: {
    ...pinFlags,
    ...timeoutFlag,
    table: { type: "string" },
    text: { type: "string" },
    tallies: { type: "string" },
  },
  async run(args, context) {
    const table = checkTable(requiredFlag(args, "table"));
    if (args.positionals.length === 0) throw usageError("give at least one PHOTO file");
    if (args.positionals.length > 8) throw usageError("an acta takes at most 8 photos");
    const budgetMs = timeoutMs(args, DEFAULT_SEND_TIMEOUT_S);
    const photos: Uint8Array[] = [];
    for (const path of args.positionals) {
      try {
        photos.push(new Uint8Array(await readFile(path)));
      } catch {
        throw usageError(`cannot read the photo ${path}: check the path`);
      }
    }
    const tallies = await readTallies(stringFlag(args, "tallies"));
    const text = stringFlag(args, "text");
    const volunteer = await openVolunteer(args, context);
    await guarded(() =>
      volunteer.acta({
        table,
        photos,
        ...(text === undefined ? {} : { text }),
        ...(tallies === undefined ? {} : { tallies }),
      }),
    );
    const { exit } = await syncAndReport(volunteer, context, budgetMs, "the acta and its photos are", false);
    if (exit === EXIT.ok) context.stdout.write("sent\n");
    return exit;
  },
};

async function readTallies(path: string | undefined): Promise<Record<string, number> | undefined> {
  if (path === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(await readFile(path, "utf8"));
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, number>;
  } catch {
    throw usageError(`--tallies ${path} must be a JSON object of option code → votes`);
  }
}

const syncCommand: Command = {
  path: ["volunteer", "sync"],
  summary: "send the outbox and read the mailbox",
  usage: "testigo volunteer sync --dir DIR [--pin-file F]",
  help: [
    "Sends every queued report (small ones first), then the photos (resuming interrupted uploads),",
    "then reads control messages from the coordinators. Exit code 3 if the relay stayed unreachable.",
    "",
    "  --json      print { ok, sent: { envelopes, photos, chunks }, refused, unreachable, outbox }",
    TIMEOUT_HELP(DEFAULT_SYNC_TIMEOUT_S),
    "",
    PIN_HELP,
  ].join("\n"),
  flags: { ...pinFlags, ...timeoutFlag, json: { type: "boolean" } },
  async run(args, context) {
    const json = booleanFlag(args, "json");
    const budgetMs = timeoutMs(args, DEFAULT_SYNC_TIMEOUT_S);
    const volunteer = await openVolunteer(args, context);
    const { exit, result } = await syncAndReport(volunteer, context, budgetMs, "what is left is", json);
    const status = await guarded(() => volunteer.status());
    if (json) {
      context.stdout.write(
        `${JSON.stringify({
          ok: exit === EXIT.ok,
          sent: { envelopes: result.envelopesSent, photos: result.photosSent, chunks: result.chunksSent },
          refused: result.refused,
          unreachable: result.unreachable ?? null,
          outbox: status.outbox,
        })}\n`,
      );
    } else {
      const o = status.outbox;
      context.stdout.write(
        `sent ${result.envelopesSent} report(s), ${result.photosSent} photo(s); outbox: ${o.envelopes} report(s), ${o.photos} photo(s) waiting\n`,
      );
    }
    return exit;
  },
};

const statusCommand: Command = {
  path: ["volunteer", "status"],
  summary: "pseudonym, relay, campaign, what waits in the outbox, last sync",
  usage: "testigo volunteer status --dir DIR [--pin-file F] [--json]",
  help: [
    "Works offline (it sends nothing: scripts use it to inspect the outbox). With --json, prints one document:",
    '{ "pseudonym", "relay", "campaign", "outbox": { "envelopes", "actas", "photos", "chunks", "refused", "kept" },',
    '  "lastSyncAt", "lastSuccessAt", "lastError", "notices" }   (times in ms since the epoch, or null)',
    "",
    PIN_HELP,
  ].join("\n"),
  flags: { ...pinFlags, json: { type: "boolean" } },
  async run(args, context) {
    const volunteer = await openVolunteer(args, context);
    const status = await guarded(() => volunteer.status());
    if (booleanFlag(args, "json")) {
      context.stdout.write(`${JSON.stringify(status)}\n`);
      return EXIT.ok;
    }
    const time = (t: number | null) => (t === null ? "never" : new Date(t).toISOString());
    const o = status.outbox;
    context.stdout.write(
      [
        `pseudonym  ${status.pseudonym}`,
        `relay      ${status.relay}`,
        `campaign   ${status.campaign}`,
        `outbox     ${o.envelopes} report(s) (${o.actas} acta), ${o.photos} photo(s) (${o.chunks} chunks), ${o.refused} refused`,
        `last sync  ${time(status.lastSyncAt)}${status.lastError === null ? "" : ` (${status.lastError})`}`,
        "",
      ].join("\n"),
    );
    return EXIT.ok;
  },
};

const unlockCommand: Command = {
  path: ["volunteer", "unlock"],
  summary: "check the PIN (and flush the outbox)",
  usage: "testigo volunteer unlock --dir DIR [--pin-file F]",
  help: [
    'Prints "unlocked" for a right PIN, after a short silent outbox flush (what is queued is sent,',
    "the mailbox is read). A wrong PIN changes nothing but the failed-attempt counter (exit code 5) and",
    "says how many attempts are left; at the limit set at enrollment the device erases itself.",
    "The duress PIN prints the same and exits the same way (see docs/cli-volunteer.md).",
    TIMEOUT_HELP(DEFAULT_FLUSH_TIMEOUT_S),
    "",
    PIN_HELP,
  ].join("\n"),
  flags: { ...pinFlags, ...timeoutFlag },
  async run(args, context) {
    const budgetMs = timeoutMs(args, DEFAULT_FLUSH_TIMEOUT_S);
    const volunteer = await openVolunteer(args, context);
    await volunteer.flush(budgetMs);
    context.stdout.write("unlocked\n");
    return EXIT.ok;
  },
};

const checkinCommand: Command = {
  path: ["volunteer", "checkin"],
  summary: "send a check-in now (sync also sends one when the last is older than the interval)",
  usage: "testigo volunteer checkin --dir DIR [--pin-file F]",
  help: [
    "Queues a `checkin` report (on the wire it looks like any status report), then tries to send it.",
    "If the relay is unreachable it stays in the outbox (exit code 3) and `testigo volunteer sync`",
    "sends it later.",
    TIMEOUT_HELP(DEFAULT_SEND_TIMEOUT_S),
    "",
    PIN_HELP,
  ].join("\n"),
  flags: { ...pinFlags, ...timeoutFlag },
  async run(args, context) {
    const budgetMs = timeoutMs(args, DEFAULT_SEND_TIMEOUT_S);
    const volunteer = await openVolunteer(args, context);
    await guarded(() => volunteer.checkin());
    const { exit } = await syncAndReport(volunteer, context, budgetMs, "the check-in is", false);
    if (exit === EXIT.ok) context.stdout.write("sent\n");
    return exit;
  },
};

const setDuressPinCommand: Command = {
  path: ["volunteer", "set-duress-pin"],
  summary: "set or replace the duress PIN",
  usage: "testigo volunteer set-duress-pin --dir DIR [--pin-file F] [--duress-pin-file F]",
  help: [
    "Unlocks with the PIN, then puts a new harmless decoy profile under the duress PIN (replacing any",
    "earlier decoy and duress PIN). Entering the duress PIN wherever a PIN is asked then opens the decoy,",
    "erases the real profile and goes on like the PIN; what it sends is signed with the duress key,",
    "which the coordinators see as sent under duress (the unlock's check-in is the alert).",
    "",
    "  --duress-pin-file F    the duress PIN (or TESTIGO_DURESS_PIN, or a prompt on a terminal)",
    "",
    PIN_HELP,
  ].join("\n"),
  flags: { ...pinFlags, "duress-pin-file": { type: "string" } },
  async run(args, context) {
    const volunteer = await openVolunteer(args, context);
    const duressPin = await readSecret(
      {
        file: stringFlag(args, "duress-pin-file"),
        envVar: "TESTIGO_DURESS_PIN",
        prompt: "duress PIN",
        fileFlag: "--duress-pin-file",
      },
      context,
    );
    await guarded(() => volunteer.setDuressPin(duressPin));
    context.stdout.write("duress PIN set\n");
    return EXIT.ok;
  },
};

const panicCommand: Command = {
  path: ["volunteer", "panic"],
  summary: "erase this device now, without a PIN",
  usage: "testigo volunteer panic --dir DIR",
  help: [
    "Crypto-erases the device at once: the key slots are overwritten with random bytes, then every",
    "record file (keys, outbox, photos, mailbox) is deleted. Nothing is sent. Afterwards any PIN",
    'fails like a wrong PIN on a fresh device. Prints "erased". There is no undo.',
  ].join("\n"),
  flags: { dir: { type: "string" } },
  async run(args, context) {
    const dir = requiredFlag(args, "dir");
    await initSodium();
    await guarded(async () => panic(await NodeStorage.open(dir)));
    context.stdout.write("erased\n");
    return EXIT.ok;
  },
};

export const volunteerCommands: readonly Command[] = [
  enrollCommand,
  reportCommand,
  actaCommand,
  syncCommand,
  statusCommand,
  unlockCommand,
  checkinCommand,
  setDuressPinCommand,
  panicCommand,
];
