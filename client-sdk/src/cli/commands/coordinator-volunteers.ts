// `testigo coordinator volunteers --dir DIR [--silent-after DURATION] [--json]`
import { DEFAULT_SILENT_AFTER_MS, listVolunteers, type VolunteerView } from "../../coordinator/volunteers.js";
import { booleanFlag } from "../args.js";
import type { Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import {
  durationFlag,
  mapErrors,
  openDevice,
  PASSPHRASE_FLAGS,
  PASSPHRASE_HELP,
  printJson,
} from "./coordinator-common.js";

export const coordinatorVolunteers: Command = {
  path: ["coordinator", "volunteers"],
  summary: "list enrolled volunteers: pseudonym, last seen, counts, duress and wipe state",
  usage: "testigo coordinator volunteers --dir DIR [--offline] [--silent-after DURATION] [--json]",
  help: `Lists the campaign's volunteers from this device's registry (filled by fetch) and the relay's
list (revoked state). A volunteer the relay lists but whose enrollment report this device has not
fetched yet shows as "not fetched".

${PASSPHRASE_HELP}
  --offline               do not ask the relay (revoked state unknown)
  --silent-after D        a volunteer is "silent" when nothing (report or check-in) arrived within D
                          (90s, 30m, 6h, 7d; default 30m); revoked volunteers are never silent
  --json                  print an array of {"pseudonym","inviteLabel","enrolledAt","lastSeen",
                          "counts","duress","wipe","revoked","security","known","lastCheckin",
                          "silent","wipeDeadline"}

"security" counts enrollments of OTHER keys that were refused because they reused this
volunteer's invite: the invite leaked, or this volunteer is minting fake identities.
A volunteer who sent a duress report is listed first, with a DURESS line on stderr: treat its
reports as made under coercion. Run fetch first: these states come from the reports fetched.`,
  flags: {
    ...PASSPHRASE_FLAGS,
    offline: { type: "boolean" },
    "silent-after": { type: "string" },
    json: { type: "boolean" },
  },
  async run(args, context) {
    const silentAfterMs = durationFlag(args, "silent-after", DEFAULT_SILENT_AFTER_MS, 365 * 86_400_000);
    const { views, refused } = await mapErrors(
      "run again with --offline to see this device's registry only",
      async () => {
        const device = await openDevice(args, context);
        const views = await listVolunteers(device, { relay: !booleanFlag(args, "offline"), silentAfterMs });
        return { views, refused: (await device.counters()).security ?? 0 };
      },
    );
    if (refused > 0 && !booleanFlag(args, "json")) {
      context.stderr.write(
        `SECURITY: ${refused} enrollment(s) refused (reused, copied or expired invites); see the "security" column and OUT/quarantine/.\n`,
      );
    }
    if (booleanFlag(args, "json")) {
      printJson(context, views);
      return EXIT.ok;
    }
    alerts(context, views);
    if (views.length === 0) {
      context.stderr.write("no volunteers yet: mint invites with `testigo coordinator invite`\n");
      return EXIT.ok;
    }
    // Duress first: the one thing a coordinator must not miss.
    const ordered = [...views.filter((v) => v.duress), ...views.filter((v) => !v.duress)];
    const rows = ordered.map((v) => [
      v.pseudonym,
      v.inviteLabel ?? "-",
      v.enrolledAt ?? "-",
      v.lastSeen ?? "-",
      Object.entries(v.counts)
        .map(([kind, n]) => `${kind}:${n}`)
        .join(" ") || "-",
      v.duress ? "!! DURESS !!" : "-",
      v.silent ? "SILENT" : "-",
      v.wipe === "requested" && v.wipeDeadline !== null ? `requested (revoke ${v.wipeDeadline})` : v.wipe,
      v.revoked === null ? "?" : v.revoked ? "revoked" : "active",
      v.security > 0 ? `ALERT:${v.security}` : "-",
      v.known ? "" : "not fetched",
    ]);
    const header = [
      "pseudonym",
      "label",
      "enrolled",
      "last seen",
      "reports",
      "duress",
      "silent",
      "wipe",
      "relay",
      "security",
      "",
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const format = (r: readonly string[]) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd();
    context.stdout.write(`${[header, ...rows].map(format).join("\n")}\n`);
    return EXIT.ok;
  },
};

/** Loud lines on stderr for what needs action now: duress signals and silent volunteers. */
function alerts(context: Parameters<Command["run"]>[1], views: readonly VolunteerView[]): void {
  const duress = views.filter((v) => v.duress).map((v) => v.pseudonym);
  if (duress.length > 0) {
    context.stderr.write(
      `!!! DURESS: ${duress.length} volunteer(s) signalled duress: ${duress.join(", ")}. Their phones were opened under coercion: treat their reports as compromised, and consider \`testigo coordinator wipe\`.\n`,
    );
  }
  const silent = views.filter((v) => v.silent).length;
  if (silent > 0) {
    context.stderr.write(
      `SILENT: ${silent} volunteer(s) sent nothing within the expected interval (column "silent").\n`,
    );
  }
}
