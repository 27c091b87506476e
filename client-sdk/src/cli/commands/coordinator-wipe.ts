// `testigo coordinator wipe --dir DIR VOLUNTEER_ID`
import { PSEUDONYM_PATTERN } from "@testigo/protocol";
import { requestWipe } from "../../coordinator/wipe.js";
import { booleanFlag } from "../args.js";
import { usageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { mapErrors, openDevice, PASSPHRASE_FLAGS, PASSPHRASE_HELP, printJson } from "./coordinator-common.js";

export const coordinatorWipe: Command = {
  path: ["coordinator", "wipe"],
  summary: "ask a volunteer's device to erase itself (signed, sealed wipe in its mailbox)",
  usage: "testigo coordinator wipe --dir DIR VOLUNTEER_ID [--json]",
  help: `Posts a wipe control message, signed by this device and encrypted to the volunteer, to the
volunteer's mailbox. The phone erases its data at its next sync (within 7 days, after which the
wipe expires) and sends a wipe-ack report, which fetch records ("acknowledged").

${PASSPHRASE_HELP}
  VOLUNTEER_ID            the pseudonym, e.g. v-0123456789ABCDEF (see \`testigo coordinator volunteers\`)
  --json                  print {"ok":true,"pseudonym","counter","expiresAt","messageId"}`,
  flags: { ...PASSPHRASE_FLAGS, json: { type: "boolean" } },
  async run(args, context) {
    const [pseudonym, ...extra] = args.positionals;
    if (pseudonym === undefined || extra.length > 0) throw usageError("give exactly one VOLUNTEER_ID");
    if (!PSEUDONYM_PATTERN.test(pseudonym))
      throw usageError(`${JSON.stringify(pseudonym)} is not a volunteer id (v- and 16 characters)`);
    const result = await mapErrors("the wipe was not delivered; run wipe again", async () =>
      requestWipe(await openDevice(args, context), pseudonym),
    );
    if (booleanFlag(args, "json")) printJson(context, { ok: true, ...result });
    else context.stderr.write(`wipe requested for ${result.pseudonym}; it expires ${result.expiresAt}\n`);
    return EXIT.ok;
  },
};
