// Tests only: a volunteer built straight from protocol functions and the RelayClient (enroll,
// seal, submit, upload photos), so coordinator tests do not depend on the volunteer SDK.
import {
  bucketFor,
  bucketSize,
  concatBytes,
  type DeviceKeys,
  DOMAIN,
  decodeInvite,
  ENVELOPE_VERSION,
  type EnrollRequest,
  encodeEnvelopeHeader,
  encodeWrappedKey,
  generateDeviceKeys,
  generateSigningKeyPair,
  type InnerMessage,
  inviteNonceOf,
  inviteProofBase64url,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  type Roster,
  randomBytes,
  type SigningKeyPair,
  sealEnvelope,
  sealPhoto,
  selectEpochKeys,
  signDuressProof,
  signEnrollment,
  signEnrollmentDuress,
  signWithDomain,
  toBase64url,
  u32be,
  utf8,
  verifyRoster,
  wrapKey,
  xchachaEncrypt,
} from "@testigo/protocol";
import { RelayClient } from "../transport/relay-client.js";
import { RelayRetry } from "./relay-retry.js";

export class TestVolunteer {
  private seq = 0;
  /** Uploads honour the relay's rate limit (Retry-After), as the volunteer SDK does. */
  private readonly retry = new RelayRetry({ stallMs: 120_000 });
  private constructor(
    readonly keys: DeviceKeys,
    readonly pseudonym: string,
    readonly campaignId: string,
    readonly client: RelayClient,
    private readonly roster: Roster,
    private readonly invite: { nonce: string; storedHash: string; proof: string },
    /** The invite's secret: what an enrolled volunteer could misuse (security tests). */
    readonly inviteSecret: Uint8Array,
    /** The duress key D enrolled beside the signing key (what the decoy signs with). */
    readonly duress: SigningKeyPair,
    /** The duress public key announced in the `enrolled` report (D's, unless a test announced another). */
    readonly announcedDuressKey: Uint8Array,
    /** The `enrolled` report's duressProof (D's own, or absent: security tests). */
    private readonly duressProof: string | undefined,
  ) {}

  /**
   * Redeems the invite at the relay (with its duress key D and D's signature) and sends the
   * `enrolled` report. Security tests: `announceDuressKey` announces another key in the report
   * (the relay, which checks D's signature, still enrolls D): a public key alone gets a proof
   * signed by this device's own D (it does not verify), a key pair a valid proof.
   * `omitDuressProof` sends the report without any proof.
   */
  static async enroll(
    code: string,
    campaignId: string,
    options: {
      announceDuressKey?: Uint8Array | SigningKeyPair;
      omitDuressProof?: boolean;
      sendEnrolled?: boolean;
    } = {},
  ): Promise<TestVolunteer> {
    const invite = decodeInvite(code);
    const keys = generateDeviceKeys();
    const duress = generateSigningKeyPair();
    const announced = options.announceDuressKey;
    const announcedPair = announced === undefined || announced instanceof Uint8Array ? undefined : announced;
    const duressKey =
      announced === undefined ? duress.publicKey : (announcedPair?.publicKey ?? (announced as Uint8Array));
    const s = keys.signing.publicKey;
    const e = keys.encryption.publicKey;
    const duressProof =
      options.omitDuressProof === true
        ? undefined
        : signDuressProof(campaignId, s, e, (announcedPair ?? duress).privateKey);
    const anonymous = new RelayClient(invite.relayUrl);
    const token = inviteRedeemToken(invite.secret);
    const request: EnrollRequest = {
      redeemToken: toBase64url(token),
      signingKey: toBase64url(s),
      encryptionKey: toBase64url(e),
      duressKey: toBase64url(duress.publicKey),
      signature: signEnrollment(token, s, e, keys.signing.privateKey, duress.publicKey),
      duressSignature: signEnrollmentDuress(token, s, e, duress.publicKey, duress.privateKey),
    };
    const pseudonym = await anonymous.enroll(campaignId, request);
    const roster = verifyRoster(await anonymous.getRoster(campaignId), invite.rootFingerprint);
    const client = anonymous.withCredential({
      campaignId,
      role: "volunteer",
      principal: pseudonym,
      signingPrivateKey: keys.signing.privateKey,
    });
    const volunteer = new TestVolunteer(
      keys,
      pseudonym,
      campaignId,
      client,
      roster,
      {
        nonce: toBase64url(inviteNonceOf(invite.secret)),
        storedHash: inviteStoredHashBase64url(token),
        proof: inviteProofBase64url(invite.secret, keys.signing.publicKey, keys.encryption.publicKey),
      },
      invite.secret,
      duress,
      duressKey,
      duressProof,
    );
    if (options.sendEnrolled !== false) await volunteer.sendEnrolled();
    return volunteer;
  }

  /** Sends the `enrolled` report (enroll does, unless told not to). */
  async sendEnrolled(): Promise<string> {
    const message = this.message("enrolled", "0", "");
    await this.submit(message);
    return message.messageId;
  }

  /** The signer that signs with the duress key D (what the decoy does). */
  get duressSigner(): DeviceKeys {
    return { signing: this.duress, encryption: this.keys.encryption };
  }

  /** A client whose sessions this volunteer's pseudonym opens with the duress key D (the decoy's). */
  duressClient(principal: string = this.pseudonym): RelayClient {
    return this.client.withCredential({
      campaignId: this.campaignId,
      role: "volunteer",
      principal,
      signingPrivateKey: this.duress.privateKey,
    });
  }

  /** The fields every inner message has, with the next seq. */
  common(table: string, text: string) {
    return {
      v: 1 as const,
      messageId: toBase64url(randomBytes(16)),
      campaignId: this.campaignId,
      seq: this.seq++,
      sentAt: Date.now(),
      table,
      text,
    };
  }

  /** A sealed message, ready to submit (and to submit again: same id). */
  message(kind: "status" | "duress" | "checkin" | "enrolled", table: string, text: string): InnerMessage {
    const common = this.common(table, text);
    if (kind === "enrolled") {
      return {
        kind,
        ...common,
        invite: this.invite,
        encryptionKey: toBase64url(this.keys.encryption.publicKey),
        duressKey: toBase64url(this.announcedDuressKey),
        ...(this.duressProof === undefined ? {} : { duressProof: this.duressProof }),
      };
    }
    return { kind, ...common };
  }

  /**
   * A request of this volunteer's, retried like the SDK's (Retry-After, network failures: e.g. a
   * keep-alive connection the relay closed just as it was reused).
   */
  request<T>(operation: () => Promise<T>): Promise<T> {
    return this.retry.run(operation);
  }

  private epochKeys() {
    return this.retry.run(() => this.client.getEpochKeys(this.campaignId));
  }

  /** Seals with this volunteer's key, or with `signer` (a forged identity, in security tests). */
  async seal(message: InnerMessage, signer: DeviceKeys = this.keys): Promise<Uint8Array> {
    const recipients = selectEpochKeys(await this.epochKeys(), this.roster, Date.now());
    return sealEnvelope({ campaignId: this.campaignId, sender: signer.signing, recipients, message }).envelope;
  }

  async submit(message: InnerMessage, signer: DeviceKeys = this.keys): Promise<string> {
    const envelope = await this.seal(message, signer);
    return this.retry.run(() => this.client.submitEnvelope(envelope));
  }

  /**
   * What a hostile volunteer can do with its own key: the envelope construction of sealEnvelope
   * (header, signature over header || json, padding, AEAD, key wrap) WITHOUT its schema check, so
   * a signed message with inconsistent content reaches coordinators.
   */
  async submitUnchecked(message: Record<string, unknown> & { messageId: string }): Promise<string> {
    const recipients = selectEpochKeys(await this.epochKeys(), this.roster, Date.now());
    const json = utf8(JSON.stringify(message));
    const bucket = bucketFor(32 + 64 + 4 + json.length);
    const header = encodeEnvelopeHeader({
      version: ENVELOPE_VERSION,
      campaignId: this.campaignId,
      messageId: message.messageId,
      bucket,
      recipientCount: recipients.length,
    });
    const signature = signWithDomain(DOMAIN.reportSignature, concatBytes(header, json), this.keys.signing.privateKey);
    const padded = new Uint8Array(bucketSize(bucket) ?? 0);
    padded.set(concatBytes(this.keys.signing.publicKey, signature, u32be(json.length), json), 0);
    const contentKey = randomBytes(32);
    const nonce = randomBytes(24);
    const entries = recipients.map((r) => encodeWrappedKey(wrapKey(contentKey, r.publicKey, header)));
    const ciphertext = xchachaEncrypt(padded, concatBytes(header, ...entries), nonce, contentKey);
    const envelope = concatBytes(header, ...entries, nonce, ciphertext);
    return this.request(() => this.client.submitEnvelope(envelope));
  }

  /**
   * The H1 attack: an `enrolled` report for NEW keys, with a valid proof for this volunteer's
   * invite, submitted through this volunteer's own session. Returns the new keys.
   */
  async forgeEnrollment(secret: Uint8Array = this.inviteSecret): Promise<{ keys: DeviceKeys; messageId: string }> {
    const keys = generateDeviceKeys();
    const token = inviteRedeemToken(secret);
    const message: InnerMessage = {
      kind: "enrolled",
      ...this.common("0", ""),
      invite: {
        nonce: toBase64url(inviteNonceOf(secret)),
        storedHash: inviteStoredHashBase64url(token),
        proof: inviteProofBase64url(secret, keys.signing.publicKey, keys.encryption.publicKey),
      },
      encryptionKey: toBase64url(keys.encryption.publicKey),
    };
    await this.submit(message, keys);
    return { keys, messageId: message.messageId };
  }

  async wipeAck(counter: number): Promise<string> {
    const message: InnerMessage = { kind: "wipe-ack", ...this.common("0", ""), counter };
    await this.submit(message);
    return message.messageId;
  }

  async status(table: string, text: string, kind: "status" | "duress" | "checkin" = "status"): Promise<string> {
    const message = this.message(kind, table, text);
    await this.submit(message);
    return message.messageId;
  }

  /**
   * Uploads the photos, then sends the acta (or the acta first, with `actaFirst`), signed by this
   * volunteer's key or by `signer` (e.g. `duressSigner`: the decoy's acta).
   */
  async acta(
    table: string,
    photos: readonly Uint8Array[],
    options: { actaFirst?: boolean; signer?: DeviceKeys } = {},
  ): Promise<string> {
    const sealed = photos.map((photo) => sealPhoto(photo));
    const message: InnerMessage = {
      kind: "acta",
      v: 1,
      messageId: toBase64url(randomBytes(16)),
      campaignId: this.campaignId,
      seq: this.seq++,
      sentAt: Date.now(),
      table,
      text: "",
      tallies: {},
      photos: sealed.map(({ ref }) => ({
        photoId: toBase64url(ref.photoId),
        key: toBase64url(ref.key),
        header: toBase64url(ref.header),
        sha256: toBase64url(ref.sha256),
        size: ref.size,
        chunkCount: ref.chunkCount,
      })),
    };
    if (options.actaFirst === true) await this.submit(message, options.signer);
    for (const { ref, chunks } of sealed) {
      const id = toBase64url(ref.photoId);
      await this.retry.run(() => this.client.createPhoto(id, ref.chunkCount));
      for (const [index, chunk] of chunks.entries()) await this.retry.run(() => this.client.putChunk(id, index, chunk));
    }
    if (options.actaFirst !== true) await this.submit(message, options.signer);
    return message.messageId;
  }
}
