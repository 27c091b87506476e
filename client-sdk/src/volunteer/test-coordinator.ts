// Tests only: a minimal coordinator built straight on the protocol package and RelayClient (no
// coordinator SDK), so volunteer tests can register a campaign, publish epoch keys, mint invites
// and read back what volunteers sent through a real relay.
import {
  createEpochKey,
  createRoster,
  type EncryptionKeyPair,
  encodeInvite,
  epochsToPublish,
  fromBase64url,
  generateDeviceKeys,
  generateSigningKeyPair,
  type InnerMessage,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  newInviteSecret,
  openEnvelope,
  openPhoto,
  type PhotoRef,
  publicKeysOf,
  randomBytes,
  rosterFingerprint,
} from "@testigo/protocol";
import { RelayClient } from "../transport/relay-client.js";

export interface TestCoordinator {
  readonly campaignId: string;
  readonly client: RelayClient;
  readonly epochKeys: EncryptionKeyPair[];
  /** A fresh invite code registered with the relay. */
  invite(): Promise<string>;
  /** Reads and acks the inbox: opened messages and completed photo ids. */
  fetch(): Promise<{ messages: InnerMessage[]; photos: string[] }>;
  downloadPhoto(ref: PhotoRef): Promise<Uint8Array>;
}

export async function testCoordinator(relayUrl: string, operatorToken: string, now = Date.now()) {
  const root = generateSigningKeyPair();
  const device = { id: "laptop-1", keys: generateDeviceKeys() };
  const roster = createRoster({
    root,
    serial: 1,
    issuedAt: now,
    devices: [{ id: device.id, ...publicKeysOf(device.keys) }],
  });
  const campaignId = await new RelayClient(relayUrl).registerCampaign(operatorToken, roster);
  const client = new RelayClient(relayUrl, {
    campaignId,
    role: "coordinator",
    principal: device.id,
    signingPrivateKey: device.keys.signing.privateKey,
  });
  const created = epochsToPublish(now).map((epoch) =>
    createEpochKey({ campaignId, deviceId: device.id, epoch, deviceSigningKey: device.keys.signing.privateKey }),
  );
  await client.putEpochKeys(created.map((c) => c.signed));
  const epochKeys = created.map((c) => c.keyPair);
  const inviteKey = randomBytes(32);
  const fingerprint = rosterFingerprint(root.publicKey);
  // The relay deletes a photo's chunks once every coordinator device acked it: download first.
  const downloaded = new Map<string, Uint8Array[]>();
  return {
    campaignId,
    client,
    epochKeys,
    async invite() {
      const secret = newInviteSecret(inviteKey);
      const storedHash = inviteStoredHashBase64url(inviteRedeemToken(secret));
      await client.addInvites([{ storedHash, expiresAt: Date.now() + 86_400_000 }]);
      return encodeInvite({ relayUrl, rootFingerprint: fingerprint, secret });
    },
    async fetch() {
      const messages: InnerMessage[] = [];
      const photos: string[] = [];
      for (;;) {
        const items = await client.readInbox(500);
        if (items.length === 0) break;
        for (const item of items) {
          if (item.kind === "photo") {
            photos.push(item.photoId);
            const chunks: Uint8Array[] = [];
            for (let i = 0; i < item.chunkCount; i++) chunks.push(await client.getChunk(item.photoId, i));
            downloaded.set(item.photoId, chunks);
          } else {
            const opened = openEnvelope(fromBase64url(item.envelope) ?? new Uint8Array(), {
              campaignId,
              recipient: epochKeys,
              senderKnown: () => true,
            });
            messages.push(opened.message);
          }
        }
        await client.ackInbox(items.map((i) => i.cursor));
      }
      return { messages, photos };
    },
    async downloadPhoto(ref: PhotoRef): Promise<Uint8Array> {
      const chunks = downloaded.get(ref.photoId) ?? [];
      const b = (text: string) => fromBase64url(text) ?? new Uint8Array();
      return openPhoto(
        {
          photoId: b(ref.photoId),
          key: b(ref.key),
          header: b(ref.header),
          sha256: b(ref.sha256),
          size: ref.size,
          chunkCount: ref.chunkCount,
        },
        chunks,
      );
    },
  } satisfies TestCoordinator;
}
