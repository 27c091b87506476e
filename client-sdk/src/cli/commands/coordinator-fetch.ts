// `testigo coordinator fetch --dir DIR --out OUT [--follow]`
import { WebSocket } from "ws";
import { type FetchSummary, fetchInbox } from "../../coordinator/fetch.js";
import { followInbox } from "../../coordinator/follow.js";
import { NodeFetchOutput } from "../../coordinator/node-output.js";
import type { WebSocketConstructor } from "../../transport/live-inbox.js";
import { booleanFlag, integerFlag, requiredFlag } from "../args.js";
import type { CliContext, Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { mapErrors, openDevice, PASSPHRASE_FLAGS, PASSPHRASE_HELP, printJson } from "./coordinator-common.js";

const UNREACHABLE = "nothing unwritten was acked; run fetch again (it resumes without duplicates)";

export const coordinatorFetch: Command = {
  path: ["coordinator", "fetch"],
  summary: "pull, verify, decrypt and ack reports; write OUT/reports.jsonl and OUT/photos/",
  usage:
    "testigo coordinator fetch --dir DIR --out OUT [--follow [--interval S]] [--batch N] [--give-up-after S] [--json]",
  help: `Reads this device's inbox at the relay, verifies every report against the enrolled
volunteers, decrypts it, appends it to OUT/reports.jsonl (one JSON object per line) and writes
acta photos byte-for-byte to OUT/photos/. An item is acked only after its files are durably
written, so the command can be killed at any moment and run again: nothing is lost and nothing
is written twice. A photo is downloaded a few chunks at a time, within the relay's rate limit
(waiting as long as the relay asks), decrypted straight to disk, and checked against the SHA-256
the volunteer signed before it counts as written; the chunks of a photo whose download was
interrupted are kept in OUT/partial/ and the next run continues from there. Envelopes or photos
that fail verification go to OUT/quarantine/<id>.json with a reason, and are counted. An acta
waits in the inbox until its photos have been uploaded. Volunteers whose wipe was acknowledged,
or whose wipe deadline passed (see \`coordinator wipe --revoke-after\`), are revoked at the relay.
A summary goes to stderr.

${PASSPHRASE_HELP}
  --out OUT               output folder (created if missing)
  --follow                keep running: reports are pushed live over a WebSocket and written as
                          they arrive; reconnects by itself; Ctrl-C or SIGTERM stops it after the
                          item being written (exit 0)
  --interval S            with --follow: longest wait between reconnection attempts (1-3600, default 30)
  --batch N               inbox items per request (1-500, default 100; smaller on a slow link)
  --give-up-after S       stop (exit 3) when no relay request has succeeded for S seconds while
                          retrying (10-86400, default 300); nothing unwritten is acked
  --json                  print {"ok":true,"written","photos","quarantined","alreadyWritten","waitingForPhotos","security","revoked","quarantinedTotal"}
                          (with --follow: one such line per batch that changed something, then the totals)`,
  flags: {
    ...PASSPHRASE_FLAGS,
    out: { type: "string" },
    follow: { type: "boolean" },
    interval: { type: "string" },
    batch: { type: "string" },
    "give-up-after": { type: "string" },
    json: { type: "boolean" },
  },
  async run(args, context) {
    const outDir = requiredFlag(args, "out");
    const follow = booleanFlag(args, "follow");
    const maxBackoffMs = integerFlag(args, "interval", 30, 1, 3600) * 1000;
    const json = booleanFlag(args, "json");
    const limit = integerFlag(args, "batch", 100, 1, 500);
    const stallMs = integerFlag(args, "give-up-after", 300, 10, 86_400) * 1000;
    return mapErrors(UNREACHABLE, async () => {
      const device = await openDevice(args, context);
      const output = await NodeFetchOutput.open(outDir);
      const onProgress = progressLine(context, json);
      const common = { retry: { stallMs }, ...(onProgress === undefined ? {} : { onProgress }) };
      if (!follow) {
        const summary = await fetchInbox(device, output, { ...common, limit });
        report(context, json, summary, (await device.counters()).quarantined, outDir);
        return EXIT.ok;
      }
      const stop = new AbortController();
      const release = context.onInterrupt?.(() => stop.abort());
      try {
        const totals = await followInbox(device, output, {
          ...common,
          signal: stop.signal,
          WebSocket: WebSocket as unknown as WebSocketConstructor,
          backoff: { maxMs: maxBackoffMs },
          onBatch: (delta) => report(context, json, delta, undefined, outDir),
          onDrop: (error, retryInMs) => {
            const why = error instanceof Error ? error.message : String(error);
            context.stderr.write(`live inbox: ${why}; reconnecting in ${Math.ceil(retryInMs / 1000)} s\n`);
          },
        });
        report(context, json, totals, (await device.counters()).quarantined, outDir);
      } finally {
        release?.();
      }
      return EXIT.ok;
    });
  },
};

function progressLine(context: CliContext, json: boolean) {
  if (json || context.stderr.isTTY !== true) return undefined;
  return (p: { items: number; written: number; photos: number }) => {
    context.stderr.write(`\rfetching: ${p.items} items, ${p.written} reports, ${p.photos} photos`);
  };
}

function report(
  context: CliContext,
  json: boolean,
  summary: FetchSummary,
  total: number | undefined,
  outDir: string,
): void {
  if (json) {
    printJson(context, { ok: true, ...summary, ...(total === undefined ? {} : { quarantinedTotal: total }) });
    return;
  }
  if (context.stderr.isTTY === true) context.stderr.write("\n");
  const parts = [
    `${summary.written} report(s) written to ${outDir}/reports.jsonl`,
    `${summary.photos} photo(s)`,
    `${summary.quarantined} quarantined`,
  ];
  if (summary.alreadyWritten > 0) parts.push(`${summary.alreadyWritten} already written earlier (acked now)`);
  if (summary.waitingForPhotos > 0) parts.push(`${summary.waitingForPhotos} acta(s) waiting for their photos`);
  if (summary.revoked > 0) parts.push(`${summary.revoked} volunteer(s) revoked at the relay after a wipe`);
  context.stderr.write(`${parts.join(", ")}.\n`);
  if (summary.security > 0) {
    context.stderr.write(
      `SECURITY: ${summary.security} enrollment(s) refused (an invite reused by another key, copied, or expired): see \`testigo coordinator volunteers\`.\n`,
    );
  }
  if (summary.quarantined > 0) {
    const all = total === undefined ? "" : ` (${total} quarantined in all on this device)`;
    context.stderr.write(`See ${outDir}/quarantine/ for why each item was refused${all}.\n`);
  }
}
