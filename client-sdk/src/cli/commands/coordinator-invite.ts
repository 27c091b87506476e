// `testigo coordinator invite --dir DIR [--count N] [--label TEXT]`
import { mintInvites } from "../../coordinator/invites.js";
import { booleanFlag, integerFlag, stringFlag } from "../args.js";
import { CliError } from "../cli-error.js";
import type { Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { mapErrors, openDevice, PASSPHRASE_FLAGS, PASSPHRASE_HELP, printJson } from "./coordinator-common.js";

export const coordinatorInvite: Command = {
  path: ["coordinator", "invite"],
  summary: "mint one-time invites for volunteers (one code per line)",
  usage: "testigo coordinator invite --dir DIR [--count N] [--label TEXT] [--expires-days D] [--json]",
  help: `Mints N one-time invite codes and registers their hashes with the relay (the relay never
sees a code). Each code carries the relay address and the campaign's root fingerprint. Prints
one code per line on stdout. Hand each code to one volunteer over a safe channel.

${PASSPHRASE_HELP}
  --count N               how many invites (1-1000, default 1)
  --label TEXT            a note kept on this device only (e.g. the voting centre)
  --expires-days D        days until an unused invite expires (1-90, default 14)
  --qr DIR                also write a PNG QR code per invite (not available yet: see docs)
  --json                  print {"ok":true,"invites":[{"code","label","expiresAt"}]}`,
  flags: {
    ...PASSPHRASE_FLAGS,
    count: { type: "string" },
    label: { type: "string" },
    "expires-days": { type: "string" },
    qr: { type: "string" },
    json: { type: "boolean" },
  },
  async run(args, context) {
    const count = integerFlag(args, "count", 1, 1, 1000);
    const expiresDays = integerFlag(args, "expires-days", 14, 1, 90);
    const label = stringFlag(args, "label");
    if (stringFlag(args, "qr") !== undefined) {
      throw new CliError(
        "QR_UNAVAILABLE",
        "--qr is not available in this build (no QR code library is installed): print the codes and make QR codes with another tool",
        EXIT.usage,
      );
    }
    const invites = await mapErrors("no invite was registered; run invite again", async () => {
      const device = await openDevice(args, context);
      return mintInvites(device, { count, expiresDays, ...(label === undefined ? {} : { label }) });
    });
    if (booleanFlag(args, "json")) {
      printJson(context, {
        ok: true,
        invites: invites.map((i) => ({
          code: i.code,
          label: i.label ?? null,
          expiresAt: new Date(i.expiresAt).toISOString(),
        })),
      });
    } else {
      context.stdout.write(invites.map((i) => `${i.code}\n`).join(""));
    }
    return EXIT.ok;
  },
};
