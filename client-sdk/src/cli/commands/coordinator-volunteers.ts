// `testigo coordinator volunteers --dir DIR [--json]`
import { listVolunteers } from "../../coordinator/volunteers.js";
import { booleanFlag } from "../args.js";
import type { Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { mapErrors, openDevice, PASSPHRASE_FLAGS, PASSPHRASE_HELP, printJson } from "./coordinator-common.js";

export const coordinatorVolunteers: Command = {
  path: ["coordinator", "volunteers"],
  summary: "list enrolled volunteers: pseudonym, last seen, counts, duress and wipe state",
  usage: "testigo coordinator volunteers --dir DIR [--offline] [--json]",
  help: `Lists the campaign's volunteers from this device's registry (filled by fetch) and the relay's
list (revoked state). A volunteer the relay lists but whose enrollment report this device has not
fetched yet shows as "not fetched".

${PASSPHRASE_HELP}
  --offline               do not ask the relay (revoked state unknown)
  --json                  print an array of {"pseudonym","inviteLabel","enrolledAt","lastSeen",
                          "counts","duress","wipe","revoked","security","known"}

"security" counts enrollments of OTHER keys that were refused because they reused this
volunteer's invite: the invite leaked, or this volunteer is minting fake identities.`,
  flags: { ...PASSPHRASE_FLAGS, offline: { type: "boolean" }, json: { type: "boolean" } },
  async run(args, context) {
    const { views, refused } = await mapErrors(
      "run again with --offline to see this device's registry only",
      async () => {
        const device = await openDevice(args, context);
        const views = await listVolunteers(device, { relay: !booleanFlag(args, "offline") });
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
    if (views.length === 0) {
      context.stderr.write("no volunteers yet: mint invites with `testigo coordinator invite`\n");
      return EXIT.ok;
    }
    const rows = views.map((v) => [
      v.pseudonym,
      v.inviteLabel ?? "-",
      v.enrolledAt ?? "-",
      v.lastSeen ?? "-",
      Object.entries(v.counts)
        .map(([kind, n]) => `${kind}:${n}`)
        .join(" ") || "-",
      v.duress ? "DURESS" : "-",
      v.wipe,
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
