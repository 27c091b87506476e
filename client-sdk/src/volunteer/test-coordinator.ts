// Tests only: a minimal coordinator built straight on the protocol package and RelayClient (no
// coordinator SDK), so volunteer tests can register a campaign, publish epoch keys, mint invites
// and read back what volunteers sent through a real relay.
import {
  CONTROL_KIND,
  CONTROL_VERSION,
  type ControlPayload,
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
  pseudonymFromKeys,
  publicKeysOf,
  randomBytes,
  rosterFingerprint,
  type SigningKeyPair,
  sealControl,
  toBase64url,
} from "@testigo/protocol";
import { fetchTransport, type HttpTransport } from "../transport/http.js";
import { RelayClient } from "../transport/relay-client.js";

export interface TestCoordinator {
  readonly campaignId: string;
  readonly client: RelayClient;
  readonly epochKeys: EncryptionKeyPair[];
  /** A fresh invite code registered with the relay. */
  invite(): Promise<string>;
  /**
   * Reads and acks the inbox: opened messages, completed photo ids, and for each message the
   * sender's signing key (base64url) and the envelope's size on the wire.
   */
  fetch(): Promise<{ messages: InnerMessage[]; photos: string[]; senders: string[]; sizes: number[] }>;
  downloadPhoto(ref: PhotoRef): Promise<Uint8Array>;
  /** A volunteer's encryption key, learnt from its `enrolled` report by an earlier fetch(). */
  encryptionKeyOf(pseudonym: string): Uint8Array | undefined;
  /**
   * Seals a control message (a wipe unless `payload.kind` says otherwise) to a volunteer and puts
   * it in its mailbox. `payload` overrides any field (to forge, replay, expire, misdirect);
   * `signer` replaces the roster device's signing key (a forgery).
   */
  control(
    to: { pseudonym: string; encryptionKey: Uint8Array },
    options?: { payload?: Partial<Record<string, unknown>>; signer?: SigningKeyPair },
  ): Promise<ControlPayload>;
}

/**
 * The tests' coordinator sits idle between tests; on a loaded machine its HTTP client can reuse a
 * kept-alive connection the relay has just closed (its 5 s keep-alive timeout) before its own idle
 * timer ran: the request fails with UND_ERR_SOCKET without reaching the relay. Retried once.
 */
const retryClosedSocket: HttpTransport = async (request) => {
  try {
    return await fetchTransport(request);
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code !== "UND_ERR_SOCKET") throw error;
    return fetchTransport(request);
  }
};

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
  const client = new RelayClient(
    relayUrl,
    {
      campaignId,
      role: "coordinator",
      principal: device.id,
      signingPrivateKey: device.keys.signing.privateKey,
    },
    { transport: retryClosedSocket },
  );
  const created = epochsToPublish(now).map((epoch) =>
    createEpochKey({ campaignId, deviceId: device.id, epoch, deviceSigningKey: device.keys.signing.privateKey }),
  );
  await client.putEpochKeys(created.map((c) => c.signed));
  const epochKeys = created.map((c) => c.keyPair);
  const inviteKey = randomBytes(32);
  const fingerprint = rosterFingerprint(root.publicKey);
  // The relay deletes a photo's chunks once every coordinator device acked it: download first.
  const downloaded = new Map<string, Uint8Array[]>();
  const encryptionKeys = new Map<string, Uint8Array>();
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
    encryptionKeyOf(pseudonym) {
      return encryptionKeys.get(pseudonym);
    },
    async control(to, options = {}) {
      const now = Date.now();
      const fields: Record<string, unknown> = {
        kind: CONTROL_KIND.wipe,
        v: CONTROL_VERSION,
        campaignId,
        to: to.pseudonym,
        from: device.id,
        counter: now,
        issuedAt: now,
        expiresAt: now + 86_400_000,
        ackBy: now + 86_400_000,
        ...options.payload,
      };
      // An override of `undefined` removes the field (e.g. ackBy for a notice).
      const payload = Object.fromEntries(
        Object.entries(fields).filter(([, value]) => value !== undefined),
      ) as ControlPayload;
      const sealed = sealControl({
        campaignId,
        to: { pseudonym: payload.to, encryptionKey: to.encryptionKey },
        signer: { deviceId: payload.from, signing: options.signer ?? device.keys.signing },
        payload,
      });
      await client.putMailbox(to.pseudonym, sealed.message);
      return payload;
    },
    async fetch() {
      const messages: InnerMessage[] = [];
      const photos: string[] = [];
      const senders: string[] = [];
      const sizes: number[] = [];
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
            const bytes = fromBase64url(item.envelope) ?? new Uint8Array();
            const opened = openEnvelope(bytes, {
              campaignId,
              recipient: epochKeys,
              senderKnown: () => true,
            });
            messages.push(opened.message);
            if (opened.message.kind === "enrolled") {
              const encryptionKey = fromBase64url(opened.message.encryptionKey) ?? new Uint8Array();
              const pseudonym = pseudonymFromKeys({ signingKey: opened.senderSigningKey, encryptionKey });
              encryptionKeys.set(pseudonym, encryptionKey);
            }
            senders.push(toBase64url(opened.senderSigningKey));
            sizes.push(bytes.length);
          }
        }
        await client.ackInbox(items.map((i) => i.cursor));
      }
      return { messages, photos, senders, sizes };
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
