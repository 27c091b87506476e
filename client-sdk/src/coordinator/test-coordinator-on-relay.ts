// Tests only: a real relay process and one coordinator device whose campaign is registered there
// (in-memory storage, the SDK's smallest KDF limits). Shared by the coordinator's relay tests.
import { initSodium } from "@testigo/protocol";
import { MIN_KDF_LIMITS } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { type RelayProcess, startRelay } from "../testing/relay-process.js";
import { initCampaign } from "./campaign.js";
import { CoordinatorDevice } from "./device.js";

export interface CoordinatorOnRelay {
  readonly relay: RelayProcess;
  readonly device: CoordinatorDevice;
  readonly campaignId: string;
}

export async function startCoordinatorOnRelay(passphrase: string): Promise<CoordinatorOnRelay> {
  await initSodium();
  const relay = await startRelay();
  const storage = new MemoryStorage();
  const init = await initCampaign(storage, {
    relayUrl: relay.url,
    passphrase,
    operatorToken: relay.token,
    kdfLimits: MIN_KDF_LIMITS,
  });
  return { relay, device: await CoordinatorDevice.open(storage, passphrase), campaignId: init.campaignId };
}
