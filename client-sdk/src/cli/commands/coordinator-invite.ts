// `testigo coordinator invite --dir DIR [--count N] [--label TEXT] [--qr DIR]`
import { mintInvites } from "../../coordinator/invites.js";
import { booleanFlag, integerFlag, stringFlag } from "../args.js";
import { CliError, usageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { mapErrors, openDevice, PASSPHRASE_FLAGS, PASSPHRASE_HELP, printJson } from "./coordinator-common.js";
import { writeInviteQrCodes } from "./coordinator-invite-qr.js";

export const coordinatorInvite: Command = {
  path: ["coordinator", "invite"],
  summary: "mint one-time invites for volunteers (one code per line)",
  usage: "testigo coordinator invite --dir DIR [--count N] [--label TEXT] [--expires-days D] [--qr DIR] [--json]",
  help: `Mints N one-time invite codes and registers their hashes with the relay (the relay never
sees a code). Each code carries the relay address and the campaign's root fingerprint. Prints
one code per line on stdout. Hand each code to one volunteer over a safe channel.

${PASSPHRASE_HELP}
  --count N               how many invites (1-1000, default 1)
  --label TEXT            a note kept on this device only (e.g. the voting centre)
  --expires-days D        days until an unused invite expires (1-90, default 14)
  --qr DIR                also write a PNG QR code per invite: DIR/invite-001.png, … in the order
                          of the codes (owner-only files: each one is a secret until used)
  --json                  print {"ok":true,"invites":[{"code","label","expiresAt"}]} (with --qr,
                          each invite also has "qr": the PNG's path)`,
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
    const qrDir = stringFlag(args, "qr");
    if (qrDir === "") throw usageError("--qr needs a folder");
    const invites = await mapErrors("no invite was registered; run invite again", async () => {
      const device = await openDevice(args, context);
      return mintInvites(device, { count, expiresDays, ...(label === undefined ? {} : { label }) });
    });
    let qr: string[] | undefined;
    if (qrDir !== undefined) {
      try {
        qr = await writeInviteQrCodes(
          qrDir,
          invites.map((i) => i.code),
        );
      } catch (error) {
        // The invites exist at the relay: hand out the codes rather than lose them.
        context.stdout.write(invites.map((i) => `${i.code}\n`).join(""));
        const why = error instanceof Error ? error.message : String(error);
        throw new CliError(
          "QR_WRITE_FAILED",
          `${invites.length} invite(s) were registered (codes printed on stdout) but their QR codes could not be written to ${qrDir}: ${why}`,
          EXIT.failure,
        );
      }
    }
    if (booleanFlag(args, "json")) {
      printJson(context, {
        ok: true,
        invites: invites.map((i, n) => ({
          code: i.code,
          label: i.label ?? null,
          expiresAt: new Date(i.expiresAt).toISOString(),
          ...(qr === undefined ? {} : { qr: qr[n] }),
        })),
      });
    } else {
      context.stdout.write(invites.map((i) => `${i.code}\n`).join(""));
      if (qr !== undefined) context.stderr.write(`${qr.length} QR code(s) written to ${qrDir}\n`);
    }
    return EXIT.ok;
  },
};
