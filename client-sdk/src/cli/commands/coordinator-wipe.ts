// `testigo coordinator wipe --dir DIR VOLUNTEER_ID [--revoke-after DURATION]`
import { PSEUDONYM_PATTERN } from "@testigo/protocol";
import { requestWipe, WIPE_LIFETIME_MS } from "../../coordinator/wipe.js";
import { booleanFlag } from "../args.js";
import { usageError } from "../cli-error.js";
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

export const coordinatorWipe: Command = {
  path: ["coordinator", "wipe"],
  summary: "ask a volunteer's device to erase itself (signed, sealed wipe in its mailbox)",
  usage: "testigo coordinator wipe --dir DIR VOLUNTEER_ID [--revoke-after DURATION] [--json]",
  help: `Posts a wipe control message, signed by this device and encrypted to the volunteer, to the
volunteer's mailbox. The phone erases its data at its next sync (within 7 days, after which the
wipe expires) and sends a wipe-ack report: fetch then records it ("acknowledged") and revokes the
volunteer at the relay. A phone that does not acknowledge by the deadline (--revoke-after, default
the wipe's 7 days) is revoked at the relay by the first fetch after it: its credential is refused
and its mailbox deleted.

${PASSPHRASE_HELP}
  VOLUNTEER_ID            the pseudonym, e.g. v-0123456789ABCDEF (see \`testigo coordinator volunteers\`)
  --revoke-after D        revoke at the relay if no acknowledgement within D (90s, 30m, 6h, 7d; at most 30d)
  --json                  print {"ok":true,"pseudonym","counter","expiresAt","messageId","revokeAt"}`,
  flags: { ...PASSPHRASE_FLAGS, "revoke-after": { type: "string" }, json: { type: "boolean" } },
  async run(args, context) {
    const [pseudonym, ...extra] = args.positionals;
    if (pseudonym === undefined || extra.length > 0) throw usageError("give exactly one VOLUNTEER_ID");
    if (!PSEUDONYM_PATTERN.test(pseudonym))
      throw usageError(`${JSON.stringify(pseudonym)} is not a volunteer id (v- and 16 characters)`);
    const revokeAfterMs = durationFlag(args, "revoke-after", WIPE_LIFETIME_MS, 30 * 86_400_000);
    const result = await mapErrors("the wipe was not delivered; run wipe again", async () =>
      requestWipe(await openDevice(args, context), pseudonym, { revokeAfterMs }),
    );
    if (booleanFlag(args, "json")) printJson(context, { ok: true, ...result });
    else {
      context.stderr.write(
        `wipe requested for ${result.pseudonym}; it expires ${result.expiresAt}; without an acknowledgement, the first fetch after ${result.revokeAt} revokes the volunteer at the relay\n`,
      );
    }
    return EXIT.ok;
  },
};
