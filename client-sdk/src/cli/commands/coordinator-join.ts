// `testigo coordinator join` and `testigo coordinator add-device`: a second coordinator device.
import { readFile, writeFile } from "node:fs/promises";
import { initSodium } from "@testigo/protocol";
import { addDevice, completeJoin, joinRequest } from "../../coordinator/devices.js";
import { NodeStorage } from "../../storage/node-storage.js";
import { booleanFlag, requiredFlag, stringFlag } from "../args.js";
import { CliError, usageError } from "../cli-error.js";
import type { Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import {
  mapErrors,
  openDevice,
  PASSPHRASE_FLAGS,
  PASSPHRASE_HELP,
  printJson,
  readPassphrase,
} from "./coordinator-common.js";

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch {
    throw new CliError("FILE_UNREADABLE", `cannot read ${flag} ${path}: check the path`, EXIT.usage);
  }
}

export const coordinatorJoin: Command = {
  path: ["coordinator", "join"],
  summary: "add this machine as another coordinator device (request, then bundle)",
  usage: "testigo coordinator join --dir DIR (--relay URL [--label TEXT] | --bundle FILE) [--json]",
  help: `Step 1, on the new device: \`join --dir DIR --relay URL\` creates this device's keys in DIR and
prints a join request (public keys only) on stdout. Give it to the coordinator whose device
created the campaign, who runs \`testigo coordinator add-device --dir D1 --request FILE --out BUNDLE\`.
Step 2, on the new device: \`join --dir DIR --bundle BUNDLE\` opens the bundle (sealed to this
device), checks the roster, publishes this device's epoch keys, and prints the root
fingerprint: compare it with the other coordinators out of band.

${PASSPHRASE_HELP}
  --relay URL             the campaign's relay (step 1)
  --label TEXT            a name for this device, shown to coordinators only (step 1)
  --bundle FILE           the bundle made by add-device (step 2)
  --json                  step 1: {"ok":true,"request":{…}}; step 2: {"ok":true,"campaignId","deviceId","fingerprint"}`,
  flags: {
    ...PASSPHRASE_FLAGS,
    relay: { type: "string" },
    label: { type: "string" },
    bundle: { type: "string" },
    json: { type: "boolean" },
  },
  async run(args, context) {
    const dir = requiredFlag(args, "dir");
    const relayUrl = stringFlag(args, "relay");
    const bundleFile = stringFlag(args, "bundle");
    if ((relayUrl === undefined) === (bundleFile === undefined))
      throw usageError("give either --relay (step 1) or --bundle (step 2)");
    await initSodium();
    const passphrase = await readPassphrase(args, context);
    const storage = await NodeStorage.open(dir);
    const json = booleanFlag(args, "json");
    if (relayUrl !== undefined) {
      const label = stringFlag(args, "label");
      const request = await mapErrors("", () =>
        joinRequest(storage, { passphrase, relayUrl, now: context.now, ...(label === undefined ? {} : { label }) }),
      );
      if (json) printJson(context, { ok: true, request: JSON.parse(request) });
      else {
        context.stdout.write(request);
        context.stderr.write(
          "Give this request to the coordinator who created the campaign (it holds only public keys).\n",
        );
      }
      return EXIT.ok;
    }
    const bundle = await readText(bundleFile as string, "--bundle");
    const device = await mapErrors("the bundle is kept; run join --bundle again", () =>
      completeJoin(storage, { passphrase, bundle, now: context.now }),
    );
    const result = {
      campaignId: device.config.campaignId,
      deviceId: device.config.deviceId,
      fingerprint: device.fingerprintText,
    };
    if (json) printJson(context, { ok: true, ...result });
    else
      context.stdout.write(
        `campaign ${result.campaignId}\nroot fingerprint: ${result.fingerprint}\ndevice ${result.deviceId}\n`,
      );
    return EXIT.ok;
  },
};

export const coordinatorAddDevice: Command = {
  path: ["coordinator", "add-device"],
  summary: "add another coordinator device to the roster and write its sealed bundle",
  usage: "testigo coordinator add-device --dir DIR --request FILE --out BUNDLE [--json]",
  help: `On the device that created the campaign: signs a new roster that includes the device of the
join request, uploads it to the relay, and writes BUNDLE, sealed to the new device (campaign id,
root fingerprint, relay, the shared invite key and the volunteer registry; never the root key).

${PASSPHRASE_HELP}
  --request FILE          the join request printed by \`testigo coordinator join --relay\`
  --out BUNDLE            where to write the bundle
  --json                  print {"ok":true,"rosterSerial","bundle"}`,
  flags: { ...PASSPHRASE_FLAGS, request: { type: "string" }, out: { type: "string" }, json: { type: "boolean" } },
  async run(args, context) {
    const request = await readText(requiredFlag(args, "request"), "--request");
    const out = requiredFlag(args, "out");
    const result = await mapErrors("the roster was not changed; run add-device again", async () =>
      addDevice(await openDevice(args, context), request),
    );
    await writeFile(out, result.bundle, { mode: 0o600 });
    if (booleanFlag(args, "json")) printJson(context, { ok: true, rosterSerial: result.serial, bundle: out });
    else
      context.stderr.write(`roster serial ${result.serial} uploaded; give ${out} to the new device (join --bundle)\n`);
    return EXIT.ok;
  },
};
