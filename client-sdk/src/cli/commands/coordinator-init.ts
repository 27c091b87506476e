// `testigo coordinator init --dir DIR --relay URL`
import { initSodium } from "@testigo/protocol";
import { initCampaign } from "../../coordinator/campaign.js";
import { NodeStorage } from "../../storage/node-storage.js";
import { booleanFlag, requiredFlag, stringFlag } from "../args.js";
import type { Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { readSecret } from "../secrets.js";
import { mapErrors, PASSPHRASE_FLAGS, PASSPHRASE_HELP, printJson, readPassphrase } from "./coordinator-common.js";

export const coordinatorInit: Command = {
  path: ["coordinator", "init"],
  summary: "create a campaign (root key, this device, roster) and register it with the relay",
  usage:
    "testigo coordinator init --dir DIR --relay URL [--relay-token-file F] [--passphrase-file F] [--label TEXT] [--json]",
  help: `Creates the campaign's root key, its invite key, this device's keys and the signed roster
(serial 1), keeps them in DIR encrypted under a passphrase (at least 8 characters), registers
the campaign with the relay and publishes this device's epoch keys. Prints the campaign id and
the root fingerprint: compare the fingerprint with other coordinators out of band.
If registration was interrupted, running init again with the same DIR resumes it.

${PASSPHRASE_HELP}
  --relay URL             the relay (https://…; plain http only to loopback or .onion)
  --relay-token-file F    the operator's registration token (else TESTIGO_RELAY_TOKEN)
  --label TEXT            a name for this device, shown to coordinators only
  --json                  print {"ok":true,"campaignId","deviceId","fingerprint","rosterSerial","relay","created"}`,
  flags: {
    ...PASSPHRASE_FLAGS,
    relay: { type: "string" },
    "relay-token-file": { type: "string" },
    label: { type: "string" },
    json: { type: "boolean" },
  },
  async run(args, context) {
    const dir = requiredFlag(args, "dir");
    const relayUrl = requiredFlag(args, "relay");
    await initSodium();
    const operatorToken = await readSecret(
      {
        file: stringFlag(args, "relay-token-file"),
        envVar: "TESTIGO_RELAY_TOKEN",
        prompt: "Relay registration token",
        fileFlag: "--relay-token-file",
      },
      context,
    );
    const passphrase = await readPassphrase(args, context);
    const label = stringFlag(args, "label");
    const result = await mapErrors("nothing was registered; the keys are kept in --dir: run init again", async () =>
      initCampaign(await NodeStorage.open(dir), {
        relayUrl,
        passphrase,
        operatorToken,
        now: context.now,
        ...(label === undefined ? {} : { label }),
      }),
    );
    if (booleanFlag(args, "json")) {
      printJson(context, { ok: true, ...result, relay: relayUrl });
    } else {
      context.stdout.write(
        `campaign ${result.campaignId}\nroot fingerprint: ${result.fingerprint}\ndevice ${result.deviceId} (roster serial ${result.rosterSerial})\n`,
      );
      context.stderr.write(
        `${result.created ? "Campaign created and registered" : "Campaign registration completed"}. Compare the root fingerprint with the other coordinators out of band.\n`,
      );
    }
    return EXIT.ok;
  },
};
