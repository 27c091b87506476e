// Executing a verified remote wipe (sync.ts verified it: roster signature, aimed at this
// pseudonym, counter above the signer's last, not expired). The `wipe-ack` is prepared — sealed
// and written — BEFORE anything is erased, sent once within the run's budget, and then everything
// is crypto-erased whether or not the ack got through: a wipe never waits on the network.
import { type ControlPayload, REPORT_KIND } from "@testigo/protocol";
import type { DeviceStorage } from "../storage/storage.js";
import type { RelayClient } from "../transport/relay-client.js";
import { eraseDevice } from "./device.js";
import { loadOutbox, queueMessage } from "./outbox.js";
import { type RetryPolicy, withRetry } from "./retry.js";
import { bytesOf, type VolunteerStore } from "./volunteer-store.js";

/** Returns whether the relay accepted the ack; the device is erased in every case. */
export async function executeWipe(
  storage: DeviceStorage,
  store: VolunteerStore,
  client: RelayClient,
  wipe: Pick<Extract<ControlPayload, { kind: "wipe" }>, "counter">,
  retry: RetryPolicy,
): Promise<boolean> {
  let acked = false;
  try {
    // An ack an earlier run prepared for this wipe (it died before sending it) is the one sent:
    // same message id, so the coordinators see one wipe-ack whatever happened.
    const prepared = (await loadOutbox(store)).find(
      (item) =>
        item.type === "envelope" &&
        item.sealed !== undefined &&
        item.message.kind === REPORT_KIND.wipeAck &&
        item.message.counter === wipe.counter,
    );
    const id =
      prepared?.id ??
      (
        await queueMessage(
          store,
          { kind: REPORT_KIND.wipeAck, table: "0", text: "", counter: wipe.counter },
          retry.now(),
        )
      ).id;
    const item = await store.item(id);
    if (item?.type === "envelope" && item.sealed !== undefined) {
      const envelope = bytesOf(item.sealed.envelope);
      await withRetry(() => client.submitEnvelope(envelope), retry);
      acked = true;
    }
  } catch {
    // Unreachable relay, refusal, no current coordinator keys: the erase goes ahead regardless.
  }
  await eraseDevice(storage);
  return acked;
}
