// `testigo coordinator fetch --dir DIR --out OUT [--follow]`
import { type FetchSummary, fetchInbox } from "../../coordinator/fetch.js";
import { NodeFetchOutput } from "../../coordinator/node-output.js";
import { booleanFlag, integerFlag, requiredFlag } from "../args.js";
import type { CliContext, Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { mapErrors, openDevice, PASSPHRASE_FLAGS, PASSPHRASE_HELP, printJson } from "./coordinator-common.js";

const UNREACHABLE = "nothing unwritten was acked; run fetch again (it resumes without duplicates)";

export const coordinatorFetch: Command = {
  path: ["coordinator", "fetch"],
  summary: "pull, verify, decrypt and ack reports; write OUT/reports.jsonl and OUT/photos/",
  usage: "testigo coordinator fetch --dir DIR --out OUT [--follow [--interval S]] [--batch N] [--json]",
  help: `Reads this device's inbox at the relay, verifies every report against the enrolled
volunteers, decrypts it, appends it to OUT/reports.jsonl (one JSON object per line) and writes
acta photos byte-for-byte to OUT/photos/. An item is acked only after its files are durably
written, so the command can be killed at any moment and run again: nothing is lost and nothing
is written twice. Envelopes or photos that fail verification go to OUT/quarantine/<id>.json with
a reason, and are counted. An acta waits in the inbox until its photos have been uploaded.
A summary goes to stderr.

${PASSPHRASE_HELP}
  --out OUT               output folder (created if missing)
  --follow                keep fetching until interrupted (HTTP polling every --interval seconds)
  --interval S            seconds between polls with --follow (1-3600, default 5)
  --batch N               inbox items per request (1-500, default 100; smaller on a slow link)
  --json                  print {"ok":true,"written","photos","quarantined","alreadyWritten","waitingForPhotos","security","quarantinedTotal"}
                          (with --follow: one such line per poll that changed something)`,
  flags: {
    ...PASSPHRASE_FLAGS,
    out: { type: "string" },
    follow: { type: "boolean" },
    interval: { type: "string" },
    batch: { type: "string" },
    json: { type: "boolean" },
  },
  async run(args, context) {
    const outDir = requiredFlag(args, "out");
    const follow = booleanFlag(args, "follow");
    const intervalMs = integerFlag(args, "interval", 5, 1, 3600) * 1000;
    const json = booleanFlag(args, "json");
    const limit = integerFlag(args, "batch", 100, 1, 500);
    return mapErrors(UNREACHABLE, async () => {
      const device = await openDevice(args, context);
      const output = await NodeFetchOutput.open(outDir);
      for (;;) {
        const onProgress = progressLine(context, json);
        const summary = await fetchInbox(device, output, onProgress === undefined ? { limit } : { limit, onProgress });
        const total = (await device.counters()).quarantined;
        const changed = summary.written + summary.quarantined + summary.alreadyWritten > 0;
        if (!follow || changed) report(context, json, summary, total, outDir);
        if (!follow) return EXIT.ok;
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    });
  },
};

function progressLine(context: CliContext, json: boolean) {
  if (json || context.stderr.isTTY !== true) return undefined;
  return (p: { items: number; written: number; photos: number }) => {
    context.stderr.write(`\rfetching: ${p.items} items, ${p.written} reports, ${p.photos} photos`);
  };
}

function report(context: CliContext, json: boolean, summary: FetchSummary, total: number, outDir: string): void {
  if (json) {
    printJson(context, { ok: true, ...summary, quarantinedTotal: total });
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
  context.stderr.write(`${parts.join(", ")}.\n`);
  if (summary.security > 0) {
    context.stderr.write(
      `SECURITY: ${summary.security} enrollment(s) refused (an invite reused by another key, copied, or expired): see \`testigo coordinator volunteers\`.\n`,
    );
  }
  if (summary.quarantined > 0) {
    context.stderr.write(
      `See ${outDir}/quarantine/ for why each item was refused (${total} quarantined in all on this device).\n`,
    );
  }
}
