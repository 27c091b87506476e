// The Redis backend: several stateless relay nodes share one Redis (or a Redis Cluster).
//
// DURABILITY (operator's guide). A method resolves once Redis has executed the write; what that
// means on a crash depends on the server's `appendfsync` policy (run Redis with
// `appendonly yes`; without it only RDB snapshots exist and acknowledged writes since the last
// snapshot are lost on any restart):
//   - `appendfsync always`: Redis fsyncs the append-only file before answering, so nothing the
//     relay acknowledged is lost, even on a power loss or kernel crash. The slowest setting; the
//     one Testigo's guarantee "nothing acknowledged is lost" is stated for.
//   - `appendfsync everysec` (Redis's default): the write reaches the kernel before Redis
//     answers, and is fsynced within about a second. A crash of the redis-server process alone
//     (kill -9, OOM kill) loses nothing, because the kernel still writes the page cache out; a
//     power loss or kernel crash loses up to ~1 s of acknowledged writes.
//   - `appendfsync no`: the kernel decides when to flush (typically up to ~30 s); a power loss
//     or kernel crash can lose that much. Process crashes alone still lose nothing.
// This is Redis 7.0: there is no WAITAOF, so the relay cannot ask for a stronger per-write
// guarantee than the server's policy. Replicas are asynchronous and add no durability guarantee.
//
// TRIMMING BY ACKS ONLY. Each campaign's inbox is one stream with one consumer group per
// coordinator device. `XADD MAXLEN` / `XTRIM MAXLEN` would delete entries that some group has
// not acked yet (groups do not hold entries back), silently losing accepted reports. So an
// entry is deleted (XDEL, plus its payload) only when a per-entry counter of groups still to
// ack reaches zero; the only other deletion is retention (`expire`), which removes entries
// older than the retention period regardless (XRANGE to clean payloads, then XTRIM MINID).
//
// Keys carry a configurable prefix and a hash tag per campaign ("testigo:{<campaignId>}:...")
// so a campaign's keys share one cluster slot and its Lua scripts stay single-slot; global keys
// (challenges, the relay secret, rate-limit buckets, the campaign list) each carry their own tag.
// Burned challenges are kept with a Redis TTL (expiry + 5 min, on Redis's clock) that only
// collects them: the relay checks a challenge's expiry from its own bytes (../challenges.ts). Nothing is stored per
// session: session tokens are sealed by the relay (see ../auth.ts).
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createClient, createCluster, RESP_TYPES } from "redis";
import {
  ACK_INBOX,
  ACK_MAILBOX,
  ADD_INVITES,
  CREATE_CAMPAIGN,
  CREATE_PHOTO,
  EXPIRE_CAMPAIGN,
  GET_PHOTO_CHUNK,
  GET_VOLUNTEER,
  LIST_PHOTO_CHUNKS,
  LIST_VOLUNTEERS,
  MERGE_BUCKETS,
  PUT_EPOCH_KEYS,
  PUT_MAILBOX,
  PUT_PHOTO_CHUNKS,
  READ_INBOX,
  READ_MAILBOX,
  REDEEM_INVITE,
  REVOKE_VOLUNTEER,
  SUBMIT_ENVELOPE,
  UPDATE_ROSTER,
} from "./redis-scripts.js";
import {
  type BucketDraw,
  type CampaignRecord,
  type ChunkResult,
  type ChunkRunResult,
  type InboxItem,
  type InboxListener,
  type MailboxItem,
  type RedeemResult,
  type Store,
  type StoredBucket,
  type SubmitResult,
  singleChunkResult,
  type VolunteerRecord,
} from "./store.js";
import { StoreUnavailable, UnknownCampaign } from "./store-errors.js";

export interface RedisStoreOptions {
  /** Prefix of every key and channel; lets several deployments share a server. */
  readonly prefix?: string;
  /** A command that gets no answer within this time rejects (a frozen server must not hang the relay). */
  readonly commandTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
}

type Arg = string | Buffer;
type Reply = Buffer | number | null | Reply[] | { [field: string]: Reply };

/** What the store needs from a connection: the same for one server and for a cluster. */
interface Link {
  call(routingKey: string | undefined, args: readonly Arg[]): Promise<Reply>;
  ping(): Promise<void>;
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer };
const CHALLENGE_TTL_SLACK_MS = 5 * 60_000;
const STREAM_ID = /^[0-9]{1,20}-[0-9]{1,20}$/;

function socketOptions(options: RedisStoreOptions) {
  return {
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    // Keep reconnecting (the relay answers 503 meanwhile), backing off up to 1 s.
    reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 5), 1_000),
  };
}

/** The username and password of the cluster's URLs (one cluster: one set, taken from the first URL). */
function clusterCredentials(urls: readonly string[]): { username?: string; password?: string } {
  const url = new URL(urls[0] ?? "redis://localhost");
  return {
    ...(url.username === "" ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === "" ? {} : { password: decodeURIComponent(url.password) }),
  };
}

/** TLS to every node when the URLs say rediss://. */
function clusterTls(urls: readonly string[]): { tls?: true } {
  return urls.some((url) => url.startsWith("rediss://")) ? { tls: true } : {};
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailable(`redis: ${what} timed out`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Rejects a command that got no answer within the timeout (a frozen server must not hang the
 * relay), with ONE timer for every command in flight instead of one timer (or abort signal) each:
 * a timeout fires up to a tenth of it late (at most 100 ms). Commands share one timeout, so they
 * expire in the order they were sent.
 */
class CommandDeadlines {
  readonly #ms: number;
  readonly #tickMs: number;
  readonly #pending = new Set<{ readonly at: number; readonly expire: () => void }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.#ms = ms;
    this.#tickMs = Math.max(1, Math.min(100, Math.floor(ms / 10)));
  }

  track<T>(promise: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = {
        at: performance.now() + this.#ms,
        expire: () => reject(new StoreUnavailable(`redis: ${what} timed out`)),
      };
      this.#pending.add(entry);
      this.#timer ??= setTimeout(this.#sweep, this.#tickMs);
      promise.then(
        (value) => {
          this.#pending.delete(entry);
          resolve(value);
        },
        (error: unknown) => {
          this.#pending.delete(entry);
          reject(error);
        },
      );
    });
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    for (const entry of this.#pending) {
      if (entry.at > now) break;
      this.#pending.delete(entry);
      entry.expire();
    }
    if (this.#pending.size > 0) this.#timer = setTimeout(this.#sweep, this.#tickMs);
  };
}

async function clientLink(url: string, options: RedisStoreOptions): Promise<Link> {
  const timeout = options.commandTimeoutMs ?? 5_000;
  const client = createClient({ url, disableOfflineQueue: true, socket: socketOptions(options) });
  // Connection errors surface as rejected commands and failed pings; addresses are not logged.
  client.on("error", () => {});
  await withTimeout(client.connect(), timeout, "connect").catch(async (error: unknown) => {
    client.destroy();
    throw error;
  });
  let subscriber: typeof client | undefined;
  const deadlines = new CommandDeadlines(timeout);
  return {
    call: (_key, args) =>
      deadlines.track(client.sendCommand([...args], { typeMapping: BUFFERS }) as Promise<Reply>, "command"),
    async ping() {
      await withTimeout(client.sendCommand(["PING"], { timeout }), timeout, "ping");
    },
    async subscribe(channel, listener) {
      if (subscriber === undefined) {
        subscriber = client.duplicate();
        subscriber.on("error", () => {});
        await withTimeout(subscriber.connect(), timeout, "connect");
      }
      const sub = subscriber;
      const onMessage = (message: string | Buffer): void => listener(message.toString());
      await withTimeout(sub.subscribe(channel, onMessage), timeout, "subscribe");
      return async () => {
        if (sub.isOpen) await sub.unsubscribe(channel, onMessage);
      };
    },
    async close() {
      subscriber?.destroy();
      client.destroy();
    },
  };
}

async function clusterLink(urls: readonly string[], options: RedisStoreOptions): Promise<Link> {
  const timeout = options.commandTimeoutMs ?? 5_000;
  const cluster = createCluster({
    rootNodes: urls.map((url) => ({ url })),
    // node-redis connects to the nodes it discovers (every master, not only the root nodes) with
    // `defaults` alone: the credentials and TLS of the URLs must be there too.
    defaults: {
      disableOfflineQueue: true,
      ...clusterCredentials(urls),
      socket: { ...socketOptions(options), ...clusterTls(urls) },
    },
  });
  cluster.on("error", () => {});
  await withTimeout(cluster.connect(), timeout, "connect").catch(async (error: unknown) => {
    cluster.destroy();
    throw error;
  });
  return {
    call: (key, args) =>
      cluster.sendCommand(key, false, [...args], { typeMapping: BUFFERS, timeout }) as Promise<Reply>,
    async ping() {
      // Every master: a campaign whose slot is on a dead master cannot be served.
      await Promise.all(
        cluster.masters.map(async (master) => {
          const node = await withTimeout(cluster.nodeClient(master), timeout, "connect");
          await withTimeout(node.sendCommand(["PING"], { timeout }), timeout, "ping");
        }),
      );
    },
    async subscribe(channel, listener) {
      // Plain PUBLISH is broadcast over the cluster bus, so one subscription on any node sees
      // messages published on every node.
      const onMessage = (message: string | Buffer): void => listener(message.toString());
      await withTimeout(cluster.subscribe(channel, onMessage), timeout, "subscribe");
      return async () => {
        await cluster.unsubscribe(channel, onMessage);
      };
    },
    async close() {
      cluster.destroy();
    },
  };
}

// --- reply decoding

function text(reply: Reply | undefined): string {
  if (Buffer.isBuffer(reply)) return reply.toString("utf8");
  if (typeof reply === "number") return String(reply);
  throw new StoreUnavailable("redis: unexpected reply");
}

function list(reply: Reply | undefined): Reply[] {
  if (Array.isArray(reply)) return reply;
  throw new StoreUnavailable("redis: unexpected reply");
}

function bytesOf(reply: Reply | undefined): Uint8Array {
  if (Buffer.isBuffer(reply)) return new Uint8Array(reply);
  throw new StoreUnavailable("redis: unexpected reply");
}

/** Field/value pairs of a flat array reply; node-redis already turns some replies (HGETALL) into objects. */
function pairs(reply: Reply | undefined): [string, Reply][] {
  if (reply !== null && typeof reply === "object" && !Array.isArray(reply) && !Buffer.isBuffer(reply)) {
    return reply instanceof Map ? [...(reply as Map<string, Reply>).entries()] : Object.entries(reply);
  }
  const flat = list(reply);
  const out: [string, Reply][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([text(flat[i]), flat[i + 1] as Reply]);
  return out;
}

interface CampaignMeta {
  campaignId: string;
  rootPublicKey: string;
  rosterSerial: number;
  deviceIds: string[];
  deviceSigningKeys: Record<string, string>;
  createdAt: number;
}

/** A number as text that Lua's tonumber reads back exactly. */
function exact(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(17);
}

function scriptSha(source: string): string {
  return createHash("sha1").update(source).digest("hex");
}

export class RedisStore implements Store {
  readonly #link: Link;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #shas = new Map<string, string>();
  #closed = false;

  private constructor(link: Link, options: RedisStoreOptions) {
    this.#link = link;
    this.#prefix = options.prefix ?? "testigo:";
    this.#channel = `${this.#prefix}inbox`;
  }

  /** One Redis server (or a primary behind a proxy). */
  static async connect(url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    return new RedisStore(await clientLink(url, options), options);
  }

  /** Redis Cluster: any subset of the nodes' URLs; the rest is discovered. */
  static async cluster(urls: readonly string[], options: RedisStoreOptions = {}): Promise<RedisStore> {
    return new RedisStore(await clusterLink(urls, options), options);
  }

  // --- plumbing

  #base(campaignId: string): string {
    return `${this.#prefix}{${campaignId}}`;
  }

  #global(kind: string, id: string): string {
    return `${this.#prefix}{${kind}:${id}}`;
  }

  async #call(key: string, args: readonly Arg[]): Promise<Reply> {
    if (this.#closed) throw new StoreUnavailable("store closed");
    try {
      return await this.#link.call(key, args);
    } catch (error) {
      throw new StoreUnavailable("redis command failed", { cause: error });
    }
  }

  /** EVALSHA, loading the script with EVAL on the node that does not have it yet. */
  async #eval(source: string, key: string, args: readonly (Arg | number)[]): Promise<Reply> {
    let sha = this.#shas.get(source);
    if (sha === undefined) {
      sha = scriptSha(source);
      this.#shas.set(source, sha);
    }
    const rest = args.map((arg) => (typeof arg === "number" ? String(arg) : arg));
    if (this.#closed) throw new StoreUnavailable("store closed");
    try {
      return await this.#link.call(key, ["EVALSHA", sha, "1", key, ...rest]);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) {
        throw new StoreUnavailable("redis command failed", { cause: error });
      }
    }
    return this.#call(key, ["EVAL", source, "1", key, ...rest]);
  }

  // --- lifecycle and health

  async ping(): Promise<void> {
    if (this.#closed) throw new StoreUnavailable("store closed");
    try {
      await this.#link.ping();
    } catch (error) {
      throw new StoreUnavailable("redis unreachable", { cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#link.close();
  }

  // --- campaigns and rosters

  #rosterArgs(record: CampaignRecord): Arg[] {
    const meta: CampaignMeta = {
      campaignId: record.campaignId,
      rootPublicKey: record.rootPublicKey,
      rosterSerial: record.rosterSerial,
      deviceIds: [...record.deviceIds],
      deviceSigningKeys: { ...record.deviceSigningKeys },
      createdAt: record.createdAt,
    };
    return [JSON.stringify(meta), Buffer.from(record.roster), String(record.rosterSerial), ...record.deviceIds];
  }

  async createCampaign(record: CampaignRecord): Promise<boolean> {
    const created = await this.#eval(CREATE_CAMPAIGN, this.#base(record.campaignId), this.#rosterArgs(record));
    // The campaign list (for `expire`) lives in another slot, so it is written apart;
    // SADD is idempotent, so a retry after a failure here repairs it.
    const list = this.#global("campaigns", "all");
    await this.#call(list, ["SADD", list, record.campaignId]);
    return created === 1;
  }

  async getCampaign(campaignId: string): Promise<CampaignRecord | undefined> {
    const key = `${this.#base(campaignId)}:c`;
    const fields = new Map(pairs(await this.#call(key, ["HGETALL", key])));
    const meta = fields.get("meta");
    const roster = fields.get("roster");
    if (meta === undefined || roster === undefined) return undefined;
    const parsed = JSON.parse(text(meta)) as CampaignMeta;
    return { ...parsed, roster: bytesOf(roster) };
  }

  async updateRoster(record: CampaignRecord): Promise<boolean> {
    return (await this.#eval(UPDATE_ROSTER, this.#base(record.campaignId), this.#rosterArgs(record))) === 1;
  }

  async putEpochKeys(campaignId: string, deviceId: string, signedEpochKeys: Uint8Array): Promise<void> {
    const ok = await this.#eval(PUT_EPOCH_KEYS, this.#base(campaignId), [deviceId, Buffer.from(signedEpochKeys)]);
    if (ok !== 1) throw new UnknownCampaign();
  }

  async getEpochKeys(campaignId: string): Promise<Readonly<Record<string, Uint8Array>>> {
    const key = `${this.#base(campaignId)}:ek`;
    const out: Record<string, Uint8Array> = {};
    for (const [device, value] of pairs(await this.#call(key, ["HGETALL", key]))) out[device] = bytesOf(value);
    return out;
  }

  // --- invites and volunteers

  async addInvites(campaignId: string, invites: readonly { storedHash: string; expiresAt: number }[]): Promise<void> {
    const args = invites.flatMap((invite) => [invite.storedHash, String(invite.expiresAt)]);
    const ok = await this.#eval(ADD_INVITES, this.#base(campaignId), args);
    if (ok !== 1) throw new UnknownCampaign();
  }

  async inviteLive(campaignId: string, storedHash: string, now: number): Promise<boolean> {
    const key = `${this.#base(campaignId)}:inv`;
    const expiresAt = await this.#call(key, ["HGET", key, storedHash]);
    return expiresAt !== null && Number(text(expiresAt)) > now;
  }

  async redeemInvite(
    campaignId: string,
    storedHash: string,
    volunteer: VolunteerRecord,
    now: number,
  ): Promise<RedeemResult> {
    const { revoked: _revoked, ...stored } = volunteer;
    const status = text(
      await this.#eval(REDEEM_INVITE, this.#base(campaignId), [
        storedHash,
        volunteer.pseudonym,
        JSON.stringify(stored),
        now,
      ]),
    );
    if (status === "redeemed" || status === "pseudonym-taken" || status === "unknown") return { status };
    throw new StoreUnavailable("redis: unexpected reply");
  }

  async getVolunteer(campaignId: string, pseudonym: string): Promise<VolunteerRecord | undefined> {
    const reply = list(await this.#eval(GET_VOLUNTEER, this.#base(campaignId), [pseudonym]));
    if (reply.length === 0) return undefined;
    return { ...(JSON.parse(text(reply[0])) as Omit<VolunteerRecord, "revoked">), revoked: reply[1] === 1 };
  }

  async listVolunteers(campaignId: string): Promise<readonly VolunteerRecord[]> {
    const [records, revoked] = list(await this.#eval(LIST_VOLUNTEERS, this.#base(campaignId), []));
    const revokedSet = new Set(list(revoked).map(text));
    return list(records)
      .map((record) => JSON.parse(text(record)) as Omit<VolunteerRecord, "revoked">)
      .map((record) => ({ ...record, revoked: revokedSet.has(record.pseudonym) }))
      .sort((a, b) => (a.pseudonym < b.pseudonym ? -1 : a.pseudonym > b.pseudonym ? 1 : 0));
  }

  async revokeVolunteer(campaignId: string, pseudonym: string): Promise<void> {
    await this.#eval(REVOKE_VOLUNTEER, this.#base(campaignId), [pseudonym]);
  }

  // --- authentication

  async burnChallenge(challenge: string, expiresAt: number): Promise<boolean> {
    const key = this.#global("ch", challenge);
    // An absolute expiry in whole seconds (Redis logs every expiry as an absolute time, and
    // a relative one would be converted at Redis's exact clock).
    const at = Math.ceil((Math.max(expiresAt, Date.now()) + CHALLENGE_TTL_SLACK_MS) / 10_000) * 10;
    const set = await this.#call(key, ["SET", key, String(expiresAt), "NX", "EXAT", String(at)]);
    return set !== null;
  }

  async relaySecret(candidate: Uint8Array): Promise<Uint8Array> {
    const key = this.#global("secret", "relay");
    // SET NX ... GET answers the value already there (nil when ours was stored): one round trip.
    const previous = await this.#call(key, ["SET", key, Buffer.from(candidate), "NX", "GET"]);
    return previous === null ? new Uint8Array(candidate) : bytesOf(previous);
  }

  // --- submissions and coordinator inboxes

  async submitEnvelope(
    campaignId: string,
    messageId: string,
    envelope: Uint8Array,
    receivedAt: number,
  ): Promise<SubmitResult> {
    const digest = createHash("sha256").update(envelope).digest();
    const status = text(
      await this.#eval(SUBMIT_ENVELOPE, this.#base(campaignId), [
        messageId,
        Buffer.from(envelope),
        digest,
        receivedAt,
        this.#channel,
        campaignId,
      ]),
    );
    if (status === "accepted" || status === "duplicate" || status === "conflict") return { status };
    if (status === "unknown-campaign") throw new UnknownCampaign();
    throw new StoreUnavailable("redis: unexpected reply");
  }

  async createPhoto(
    campaignId: string,
    photoId: string,
    chunkCount: number,
    now: number,
  ): Promise<"created" | "exists" | "conflict"> {
    const status = text(await this.#eval(CREATE_PHOTO, this.#base(campaignId), [photoId, chunkCount, now]));
    if (status === "created" || status === "exists" || status === "conflict") return status;
    if (status === "unknown-campaign") throw new UnknownCampaign();
    throw new StoreUnavailable("redis: unexpected reply");
  }

  async putPhotoChunk(
    campaignId: string,
    photoId: string,
    index: number,
    chunk: Uint8Array,
    now: number,
  ): Promise<ChunkResult> {
    return singleChunkResult(await this.putPhotoChunks(campaignId, photoId, index, [chunk], now));
  }

  async putPhotoChunks(
    campaignId: string,
    photoId: string,
    first: number,
    chunks: readonly Uint8Array[],
    now: number,
  ): Promise<ChunkRunResult> {
    const [status, stored, duplicate, complete] = list(
      await this.#eval(PUT_PHOTO_CHUNKS, this.#base(campaignId), [
        photoId,
        Number.isInteger(first) ? first : -1,
        now,
        this.#channel,
        campaignId,
        ...chunks.map((chunk) => Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)),
      ]),
    );
    const code = text(status);
    if (code === "stored") {
      return { status: code, stored: Number(stored), duplicate: Number(duplicate), complete: complete === 1 };
    }
    if (code === "conflict" || code === "unknown-photo") return { status: code };
    throw new StoreUnavailable("redis: unexpected reply");
  }

  async listPhotoChunks(campaignId: string, photoId: string): Promise<readonly number[] | undefined> {
    const reply = list(await this.#eval(LIST_PHOTO_CHUNKS, this.#base(campaignId), [photoId]));
    if (reply.length === 0) return undefined;
    const count = Number(text(reply[0]));
    // A delivered photo counts as fully held, so a resuming client uploads nothing.
    if (text(reply[1]) === "2") return Array.from({ length: count }, (_, i) => i);
    return list(reply[2])
      .map((index) => Number(text(index)))
      .sort((a, b) => a - b);
  }

  async getPhotoChunk(campaignId: string, photoId: string, index: number): Promise<Uint8Array | undefined> {
    if (!Number.isInteger(index) || index < 0) return undefined;
    const reply = await this.#eval(GET_PHOTO_CHUNK, this.#base(campaignId), [photoId, index]);
    return reply === null ? undefined : bytesOf(reply);
  }

  async readInbox(
    campaignId: string,
    deviceId: string,
    limit: number,
    afterCursor?: string,
  ): Promise<readonly InboxItem[]> {
    const after = afterCursor !== undefined && STREAM_ID.test(afterCursor) ? afterCursor : "";
    const reply = list(
      await this.#eval(READ_INBOX, this.#base(campaignId), [deviceId, Math.max(0, Math.trunc(limit)), after]),
    );
    return reply.map((entry): InboxItem => {
      const [cursor, kind, itemId, receivedAt, chunkCount, payload] = list(entry);
      if (text(kind) === "p") {
        return {
          kind: "photo",
          cursor: text(cursor),
          photoId: text(itemId),
          chunkCount: Number(text(chunkCount)),
          receivedAt: Number(text(receivedAt)),
        };
      }
      return {
        kind: "envelope",
        cursor: text(cursor),
        messageId: text(itemId),
        envelope: bytesOf(payload),
        receivedAt: Number(text(receivedAt)),
      };
    });
  }

  async ackInbox(campaignId: string, deviceId: string, cursors: readonly string[]): Promise<number> {
    const valid = cursors.filter((cursor) => STREAM_ID.test(cursor));
    if (valid.length === 0) return 0;
    return Number(await this.#eval(ACK_INBOX, this.#base(campaignId), [deviceId, ...valid]));
  }

  async onInboxAppend(listener: InboxListener): Promise<() => Promise<void>> {
    if (this.#closed) throw new StoreUnavailable("store closed");
    const onMessage = (campaignId: string): void => {
      try {
        listener(campaignId);
      } catch {
        // the listener owns its errors
      }
    };
    try {
      return await this.#link.subscribe(this.#channel, onMessage);
    } catch (error) {
      throw new StoreUnavailable("redis subscribe failed", { cause: error });
    }
  }

  // --- volunteer mailboxes

  async putMailbox(
    campaignId: string,
    pseudonym: string,
    item: MailboxItem,
    expiresAt: number,
  ): Promise<"stored" | "duplicate" | "unknown-volunteer"> {
    const status = text(
      await this.#eval(PUT_MAILBOX, this.#base(campaignId), [
        pseudonym,
        item.messageId,
        Buffer.from(item.message),
        expiresAt,
      ]),
    );
    if (status === "stored" || status === "duplicate" || status === "unknown-volunteer") return status;
    throw new StoreUnavailable("redis: unexpected reply");
  }

  async readMailbox(
    campaignId: string,
    pseudonym: string,
    limit: number,
    now: number,
  ): Promise<readonly MailboxItem[]> {
    const reply = await this.#eval(READ_MAILBOX, this.#base(campaignId), [
      pseudonym,
      Math.max(0, Math.trunc(limit)),
      now,
    ]);
    return pairs(reply).map(([messageId, message]) => ({ messageId, message: bytesOf(message) }));
  }

  async ackMailbox(campaignId: string, pseudonym: string, messageIds: readonly string[]): Promise<number> {
    if (messageIds.length === 0) return 0;
    return Number(await this.#eval(ACK_MAILBOX, this.#base(campaignId), [pseudonym, ...messageIds]));
  }

  // --- limits and retention

  async mergeRateBuckets(draws: readonly BucketDraw[], at: number): Promise<readonly StoredBucket[]> {
    const key = this.#global("rl", "buckets");
    const args = draws.flatMap((draw) => [
      draw.bucket,
      exact(draw.taken),
      exact(draw.level),
      exact(draw.capacity),
      exact(draw.refillPerSecond),
    ]);
    const reply = await this.#eval(MERGE_BUCKETS, key, [Math.trunc(at), ...args]);
    return pairs(reply).map(([bucket, value]) => {
      const [tokens, stamp, capacity, refillPerSecond] = text(value).split(" ").map(Number);
      return {
        bucket,
        tokens: tokens ?? 0,
        at: stamp ?? at,
        capacity: capacity ?? 0,
        refillPerSecond: refillPerSecond ?? 0,
      };
    });
  }

  async expire(olderThan: number, now: number): Promise<number> {
    const listKey = this.#global("campaigns", "all");
    const campaigns = list(await this.#call(listKey, ["SMEMBERS", listKey])).map(text);
    let removed = 0;
    for (const campaignId of campaigns) {
      removed += Number(await this.#eval(EXPIRE_CAMPAIGN, this.#base(campaignId), [olderThan, now]));
    }
    return removed;
  }
}
