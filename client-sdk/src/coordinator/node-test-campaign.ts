// Tests only: a campaign created through the SDK on a relay (cheap argon2id), and its device
// opened again as often as a test needs, with its own clock or HTTP transport.
import { MIN_KDF_LIMITS } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { initCampaign } from "./campaign.js";
import { CoordinatorDevice, type DeviceOptions } from "./device.js";

const PASSPHRASE = "correct horse battery";

export interface TestCampaign {
  readonly campaignId: string;
  readonly storage: MemoryStorage;
  /** The coordinator device, opened afresh (e.g. with a clock moved on, or a counting transport). */
  device(options?: DeviceOptions): Promise<CoordinatorDevice>;
}

export async function testCampaign(relay: { readonly url: string; readonly token: string }): Promise<TestCampaign> {
  const storage = new MemoryStorage();
  const { campaignId } = await initCampaign(storage, {
    relayUrl: relay.url,
    passphrase: PASSPHRASE,
    operatorToken: relay.token,
    kdfLimits: MIN_KDF_LIMITS,
  });
  return { campaignId, storage, device: (options = {}) => CoordinatorDevice.open(storage, PASSPHRASE, options) };
}
