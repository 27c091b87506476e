// The embedded default backend: one SQLite file, no server, single relay process.
//
// Durability: WAL mode; every method resolves only after its transaction committed AND the WAL
// file holding it was flushed to disk with fdatasync, so an acknowledged write survives `kill -9`
// and a power loss. The flush is ours, not SQLite's: the connection runs with synchronous=NORMAL
// (COMMIT writes the WAL frames but does not sync them; checkpoints still sync the WAL before
// and the database after copying), and the store then calls fdatasync on the WAL file in libuv's
// thread pool, so the event loop keeps serving requests while the disk syncs. One fdatasync
// covers every transaction committed before it started (group commit across batches). What
// synchronous=FULL gives (the commit is on disk before anyone is told) still holds: no write is
// answered and no read returns before every commit it could see is on disk.
// Any write or sync failure (or an injected one) poisons the store: every later call rejects and
// ping() throws until the store is reopened, so the relay fails closed instead of acknowledging
// writes it may have lost.
//
// Checkpoints (copying the WAL into the database file, then syncing it) run in a worker thread
// with its own connection (sqlite-checkpointer.ts), not in the commits on the event loop: the
// connection here runs with wal_autocheckpoint = 0. A checkpoint syncs the WAL before copying, so
// it only copies frames already on disk; a failed one poisons the store like a failed sync, and
// none starts once the store is poisoned. One starts once CHECKPOINT_FRAMES frames were added
// since the last (SQLite's own automatic checkpoint policy), counted from the WAL's length that
// SQLite keeps in the shared-memory file's header after each commit. The WAL restarts (is reused
// from its start) only when a checkpoint has copied all of it before the next commit; under
// sustained writes that may not happen by itself, so once the WAL holds WAL_LIMIT_FRAMES, new
// batches wait (queued, not refused) until a checkpoint has caught up, and the next commit
// restarts the WAL: its length stays within the bound plus one batch.
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  statSync,
} from "node:fs";
import { endianness } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { SqliteCheckpointer } from "./sqlite-checkpointer.js";
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

/** Test seam for fault tests: arm it and the next write transaction fails like an fsync error. */
export class WriteFaultInjector {
  #armed = false;
  #syncArmed = false;
  #checkpointArmed = false;
  failNextWrite(): void {
    this.#armed = true;
  }
  /** The next fdatasync of the WAL fails (after its transactions committed): nothing may be acked. */
  failNextSync(): void {
    this.#syncArmed = true;
  }
  /** The next checkpoint fails (like a disk error in the checkpointer thread). */
  failNextCheckpoint(): void {
    this.#checkpointArmed = true;
  }
  /** Called by the store before each checkpoint; true once per arming. */
  consumeCheckpoint(): boolean {
    const armed = this.#checkpointArmed;
    this.#checkpointArmed = false;
    return armed;
  }
  /** Called by the store inside each write transaction; true once per arming. */
  consume(): boolean {
    const armed = this.#armed;
    this.#armed = false;
    return armed;
  }
  /** Called by the store before each WAL sync; true once per arming. */
  consumeSync(): boolean {
    const armed = this.#syncArmed;
    this.#syncArmed = false;
    return armed;
  }
}

export interface SqliteStoreOptions {
  /** Data folder (created 0700); the database file inside it is created 0600. */
  readonly dataDir: string;
  readonly fileName?: string;
  readonly busyTimeoutMs?: number;
  readonly faults?: WriteFaultInjector;
  /** WAL frames at which new batches wait for a checkpoint to catch up (WAL_LIMIT_FRAMES). */
  readonly walLimitFrames?: number;
  /** WAL frames added after which a checkpoint starts (CHECKPOINT_FRAMES). */
  readonly checkpointFrames?: number;
}

interface QueuedWrite {
  readonly fn: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** At most this many writes share one transaction (bounds the time the event loop is held). */
const MAX_BATCH_OPS = 256;

/**
 * A checkpoint starts once a synced commit leaves CHECKPOINT_FRAMES uncopied frames in the WAL
 * (SQLite's default wal_autocheckpoint); a WAL of WAL_LIMIT_FRAMES frames (64 MiB with 4 KiB
 * pages) holds new batches until a checkpoint lets it restart.
 */
const CHECKPOINT_FRAMES = 1_000;
const WAL_LIMIT_FRAMES = 16_384;
/** The wal-index header at the start of the -shm file (sqlite.org/walformat.html), native byte order. */
const WAL_INDEX_VERSION = 3_007_000;
const WAL_INDEX_MX_FRAME_OFFSET = 16;
/** The first salt, which a WAL restart changes. */
const WAL_INDEX_SALT_OFFSET = 32;
const BIG_ENDIAN = endianness() === "BE";

// Each entry migrates from user_version = index to index + 1.
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE campaigns (
    campaign_id TEXT PRIMARY KEY,
    root_public_key TEXT NOT NULL,
    roster BLOB NOT NULL,
    roster_serial INTEGER NOT NULL,
    device_ids TEXT NOT NULL,
    device_signing_keys TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE epoch_keys (
    campaign_id TEXT NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    document BLOB NOT NULL,
    PRIMARY KEY (campaign_id, device_id)
  ) WITHOUT ROWID;
  CREATE TABLE invites (
    campaign_id TEXT NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    stored_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, stored_hash)
  ) WITHOUT ROWID;
  CREATE TABLE volunteers (
    campaign_id TEXT NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    pseudonym TEXT NOT NULL,
    signing_key TEXT NOT NULL,
    encryption_key TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, pseudonym)
  ) WITHOUT ROWID;
  CREATE TABLE challenges (challenge TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    role TEXT NOT NULL,
    principal TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- Idempotency record of every accepted message id, kept until retention (after the
  -- envelope itself is gone) so a late retry is still a duplicate, not a second delivery.
  CREATE TABLE messages (
    campaign_id TEXT NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    digest BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, message_id)
  ) WITHOUT ROWID;
  CREATE INDEX messages_by_time ON messages (received_at);
  -- state: 0 incomplete, 1 complete (in the inboxes), 2 delivered (chunks deleted).
  CREATE TABLE photos (
    campaign_id TEXT NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    photo_id TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    received_chunks INTEGER NOT NULL DEFAULT 0,
    state INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, photo_id)
  ) WITHOUT ROWID;
  CREATE INDEX photos_by_time ON photos (created_at);
  CREATE TABLE photo_chunks (
    campaign_id TEXT NOT NULL,
    photo_id TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (campaign_id, photo_id, chunk_index),
    FOREIGN KEY (campaign_id, photo_id) REFERENCES photos ON DELETE CASCADE
  ) WITHOUT ROWID;
  -- One row per inbox item (envelope or complete photo), fanned out by delivery rows.
  CREATE TABLE inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('envelope', 'photo')),
    item_id TEXT NOT NULL,
    envelope BLOB,
    chunk_count INTEGER,
    received_at INTEGER NOT NULL
  );
  CREATE INDEX inbox_by_time ON inbox (received_at);
  CREATE TABLE deliveries (
    campaign_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES inbox ON DELETE CASCADE,
    PRIMARY KEY (campaign_id, device_id, seq)
  ) WITHOUT ROWID;
  CREATE INDEX deliveries_by_seq ON deliveries (seq);
  CREATE TABLE mailbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    message_id TEXT NOT NULL,
    message BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (campaign_id, pseudonym, message_id),
    FOREIGN KEY (campaign_id, pseudonym) REFERENCES volunteers ON DELETE CASCADE
  );
  CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // Sessions became self-contained sealed tokens: nothing is stored per session any more.
  `
  DROP TABLE sessions;
  CREATE TABLE relay_secret (id INTEGER PRIMARY KEY CHECK (id = 1), secret BLOB NOT NULL);
  `,
  // Rate limits moved to memory; only levels of buckets below capacity are merged in, per interval.
  `
  DROP TABLE rate_limits;
  CREATE TABLE rate_buckets (
    bucket TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at INTEGER NOT NULL,
    capacity REAL NOT NULL,
    refill REAL NOT NULL
  ) WITHOUT ROWID;
  `,
  // Volunteers enroll a second key, the duress key, beside their signing key (NULL for earlier ones).
  `
  ALTER TABLE volunteers ADD COLUMN duress_key TEXT;
  `,
  // Message ids are random: keyed by them (WITHOUT ROWID), both the table and its time index
  // (whose entries end with the key) took one random leaf page per accepted envelope. As a rowid
  // table, rows and time-index entries are appended; only the unique index is keyed by the id.
  `
  CREATE TABLE messages_by_rowid (
    campaign_id TEXT NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    digest BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (campaign_id, message_id)
  );
  INSERT INTO messages_by_rowid (campaign_id, message_id, digest, received_at)
    SELECT campaign_id, message_id, digest, received_at FROM messages ORDER BY received_at;
  DROP TABLE messages;
  ALTER TABLE messages_by_rowid RENAME TO messages;
  CREATE INDEX messages_by_time ON messages (received_at);
  `,
];

interface CampaignRow {
  campaign_id: string;
  root_public_key: string;
  roster: Buffer;
  roster_serial: number;
  device_ids: string;
  device_signing_keys: string;
  created_at: number;
}
interface VolunteerRow {
  campaign_id: string;
  pseudonym: string;
  signing_key: string;
  encryption_key: string;
  duress_key: string | null;
  enrolled_at: number;
  revoked: number;
}
interface InboxRow {
  seq: number;
  kind: "envelope" | "photo";
  item_id: string;
  envelope: Buffer | null;
  chunk_count: number | null;
  received_at: number;
}

/** A plain Uint8Array copy: callers compare bytes, and Buffer is a different prototype. */
function bytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer);
}

function sha256(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}

/** Disk-level failures after which nothing the connection says can be trusted. */
function isFatalSqliteError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^SQLITE_(IOERR|FULL|CORRUPT|NOTADB|CANTOPEN|READONLY|PROTOCOL)/.test(code);
}

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #faults: WriteFaultInjector | undefined;
  readonly #events = new EventEmitter();
  #failure: unknown;
  #closed = false;
  readonly #queue: QueuedWrite[] = [];
  #flushScheduled = false;
  /** The WAL file, opened once: fdatasync on it makes every committed transaction durable. */
  readonly #walFd: number;
  /** Batches committed so far, and how many of them are known to be on disk. */
  #committed = 0;
  #durable = 0;
  #syncing = false;
  /** Callers waiting until the batches up to `upTo` are on disk. */
  #syncWaiters: { upTo: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /**
   * Prepared statements by SQL text: preparing costs more than running most of these (about an
   * eighth of the relay's CPU on the envelope path before this cache). Every statement here is a
   * fixed text; the ones used with pluck() are only ever used that way.
   */
  readonly #statements = new Map<string, Database.Statement>();
  /** Runs one op inside a savepoint of the batch's transaction (better-sqlite3 nests them). */
  readonly #savepoint: (fn: () => unknown) => unknown;
  readonly #checkpointer: SqliteCheckpointer;
  #checkpointing = false;
  /** The shared-memory file (-shm): its header holds the WAL's length in frames. */
  readonly #shmFd: number;
  readonly #shmHeader = Buffer.alloc(WAL_INDEX_SALT_OFFSET + 4);
  #walSalt = -1;
  /** Frames in the WAL after the last commit, and how many of them a checkpoint has copied. */
  #walFrames = 0;
  #walCopied = 0;
  /** The WAL reached WAL_LIMIT_FRAMES: no batch commits until a checkpoint has caught up. */
  #walFull = false;
  readonly #walLimitFrames: number;
  readonly #checkpointFrames: number;

  private constructor(
    db: Database.Database,
    fds: { wal: number; shm: number },
    file: string,
    options: SqliteStoreOptions,
  ) {
    this.#db = db;
    this.#walFd = fds.wal;
    this.#shmFd = fds.shm;
    this.#checkpointer = new SqliteCheckpointer(file);
    this.#faults = options.faults;
    this.#walLimitFrames = Math.max(1, Math.trunc(options.walLimitFrames ?? WAL_LIMIT_FRAMES));
    this.#checkpointFrames = Math.max(1, Math.trunc(options.checkpointFrames ?? CHECKPOINT_FRAMES));
    this.#savepoint = db.transaction((fn: () => unknown) => fn());
    this.#events.setMaxListeners(0);
  }

  #sql(text: string): Database.Statement {
    let statement = this.#statements.get(text);
    if (statement === undefined) {
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const created = !existsSync(options.dataDir);
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    chmodSync(options.dataDir, 0o700);
    // A new data folder's own directory entry is durable before anything in it is acknowledged.
    if (created) syncDirectory(dirname(options.dataDir));
    const file = join(options.dataDir, options.fileName ?? "relay.sqlite");
    const db = new Database(file);
    try {
      // SQLite answers with the mode it is in: the old one if it could not switch. Without WAL
      // the store's own WAL sync would sync nothing, and synchronous = NORMAL would lose commits.
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (mode !== "wal") throw new Error(`SQLite refused WAL mode for ${file} (journal mode: ${String(mode)})`);
      // Commits do not sync; the store syncs the WAL itself, off the event loop (see the top).
      db.pragma("synchronous = NORMAL");
      // Commits do not checkpoint either: the checkpointer thread does (see the top).
      db.pragma("wal_autocheckpoint = 0");
      db.pragma("foreign_keys = ON");
      // Deleted content (acked envelopes, dropped tables) is overwritten with zeros where that
      // costs no extra I/O, so a seized file holds less of what the relay already let go.
      db.pragma("secure_delete = FAST");
      db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5_000)}`);
      migrate(db);
      // The WAL and shared-memory files are created with the database's mode by SQLite;
      // set owner-only on all three in case the umask was generous.
      for (const suffix of ["", "-wal", "-shm"]) {
        try {
          chmodSync(file + suffix, 0o600);
        } catch {
          // -wal/-shm may not exist yet
        }
      }
    } catch (error) {
      db.close();
      throw error;
    }
    let walFd: number | undefined;
    let shmFd: number | undefined;
    try {
      // The WAL exists while the connection is open (journal_mode = WAL and the migration created
      // it); SQLite keeps it (restarting it in place, never deleting it) until the last connection
      // closes. SQLite puts it beside the database's REAL path (a symlinked database file has its
      // WAL beside the link's target): open exactly that file, never create one, and check it is
      // the same file, or every acknowledgement would rest on syncing a file SQLite never writes.
      const wal = `${realpathSync(file)}-wal`;
      walFd = openSync(wal, constants.O_RDWR);
      const opened = fstatSync(walFd);
      const named = statSync(wal);
      if (opened.dev !== named.dev || opened.ino !== named.ino) throw new Error(`${wal} changed while it was opened`);
      fsyncSync(walFd);
      // The WAL's directory entry is durable too before anything is acknowledged.
      syncDirectory(dirname(wal));
      // Read only, for the WAL's length (see the top); its format is checked once here.
      shmFd = openSync(`${realpathSync(file)}-shm`, constants.O_RDONLY);
      const header = Buffer.alloc(4);
      readSync(shmFd, header, 0, 4, 0);
      if ((BIG_ENDIAN ? header.readUInt32BE(0) : header.readUInt32LE(0)) !== WAL_INDEX_VERSION) {
        throw new Error(`unexpected SQLite wal-index version in ${file}-shm`);
      }
    } catch (error) {
      if (walFd !== undefined) closeSync(walFd);
      if (shmFd !== undefined) closeSync(shmFd);
      db.close();
      throw error;
    }
    return new SqliteStore(db, { wal: walFd, shm: shmFd }, file, options);
  }

  // --- plumbing

  #usable(): void {
    if (this.#closed) throw new StoreUnavailable("store closed");
    if (this.#failure !== undefined) throw new StoreUnavailable("store failed a write", { cause: this.#failure });
  }

  /**
   * A read sees every committed transaction, including ones whose WAL sync is still running:
   * its answer waits until they are on disk, so nothing that might still be lost reaches a client.
   */
  async #read<T>(fn: () => T): Promise<T> {
    this.#usable();
    const value = fn();
    await this.#onDisk(this.#committed);
    return value;
  }

  /** Resolves once the batches up to `upTo` are on disk; rejects if a sync failed. */
  #onDisk(upTo: number): Promise<void> {
    if (this.#failure !== undefined) {
      return Promise.reject(new StoreUnavailable("store failed a write", { cause: this.#failure }));
    }
    if (upTo <= this.#durable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#syncWaiters.push({ upTo, resolve, reject });
      this.#sync();
    });
  }

  /**
   * One fdatasync of the WAL at a time, in the thread pool; it covers every batch committed before
   * it started. Batches committed meanwhile wait for the next one (group commit across batches).
   */
  #sync(): void {
    if (this.#syncing || this.#syncWaiters.length === 0) return;
    this.#syncing = true;
    const upTo = this.#committed;
    const done = (error: unknown): void => {
      this.#syncing = false;
      if (error !== null && error !== undefined) {
        this.#poison(error, "store sync failed");
        return;
      }
      this.#durable = Math.max(this.#durable, upTo);
      const ready = this.#syncWaiters.filter((waiter) => waiter.upTo <= this.#durable);
      this.#syncWaiters = this.#syncWaiters.filter((waiter) => waiter.upTo > this.#durable);
      for (const waiter of ready) waiter.resolve();
      this.#sync();
      this.#scheduleFlush();
      this.#maybeCheckpoint();
    };
    if (this.#faults?.consumeSync() === true) {
      const fault = new Error("injected fsync failure") as Error & { code: string };
      fault.code = "EIO";
      setImmediate(() => done(fault));
      return;
    }
    fdatasync(this.#walFd, done);
  }

  /** A failed sync or checkpoint: nothing waiting is acknowledged, nothing later is accepted. */
  #poison(error: unknown, message: string): void {
    this.#failure ??= error;
    this.#walFull = false;
    const unavailable = new StoreUnavailable(message, { cause: error });
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const waiter of waiters) waiter.reject(unavailable);
    // Writes queued meanwhile are rejected by the flush (the store is poisoned).
    this.#scheduleFlush();
  }

  /**
   * Starts a checkpoint in the checkpointer thread, unless one runs, or the last one started less
   * than CHECKPOINT_INTERVAL_MS ago and left little behind. Called once a commit is on disk.
   */
  #maybeCheckpoint(): void {
    if (this.#checkpointing || this.#closed || this.#failure !== undefined) return;
    if (!this.#walFull && this.#walFrames - this.#walCopied < this.#checkpointFrames) return;
    this.#checkpointing = true;
    const checkpoint =
      this.#faults?.consumeCheckpoint() === true
        ? Promise.reject(Object.assign(new Error("injected checkpoint failure"), { code: "SQLITE_IOERR_FSYNC" }))
        : this.#checkpointer.checkpoint();
    checkpoint.then(
      ({ log, checkpointed }) => {
        this.#checkpointing = false;
        if (this.#failure !== undefined) return;
        // Of the WAL as it was then (a commit since may have restarted it: see #afterCommit).
        this.#walCopied = checkpointed;
        if (this.#walFull && checkpointed === log && log >= this.#walFrames) {
          // All copied (no commit runs while the WAL is full): the next commit restarts the WAL.
          this.#walFull = false;
          this.#scheduleFlush();
        }
        this.#maybeCheckpoint();
      },
      (error: unknown) => {
        this.#checkpointing = false;
        // A disk that fails to take a checkpoint cannot be trusted with acknowledged writes.
        if (!this.#closed) this.#poison(error, "store checkpoint failed");
      },
    );
  }

  /**
   * Group commit: runs `fn` in the next batch. Every write queued while the event loop turns
   * (concurrent requests) — or while the previous batch's WAL sync runs — goes into ONE
   * IMMEDIATE transaction, each inside its own savepoint, so one op's error rolls back only that
   * op; the batch then commits, its WAL is synced, and every op's promise settles only after
   * that sync. The next batch is committed once the sync ends, so the batch grows with the
   * disk's sync time instead of being cut into many small commits. A failure to commit or to
   * sync poisons the store and rejects every op of the batch: nothing is acknowledged that might
   * not be on disk.
   */
  #write<T>(fn: () => T): Promise<T> {
    try {
      this.#usable();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      this.#scheduleFlush();
    });
  }

  /**
   * The next batch runs on the next turn of the event loop, or once the running sync ends (or,
   * with a full WAL, once a checkpoint has caught up).
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#syncing || this.#walFull || this.#queue.length === 0) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const ops = this.#queue.splice(0, MAX_BATCH_OPS);
    if (ops.length === 0) return;
    try {
      this.#commitBatch(ops);
    } finally {
      // Ops left in the queue (more than one batch, or a batch that failed): a no-op while the
      // sync this batch started runs; its end schedules them.
      this.#scheduleFlush();
    }
  }

  #commitBatch(ops: readonly QueuedWrite[]): void {
    try {
      this.#usable();
    } catch (error) {
      for (const op of ops) op.reject(error);
      return;
    }
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    const batch = this.#db.transaction(() => {
      for (const op of ops) {
        try {
          outcomes.push({ ok: true, value: this.#savepoint(op.fn) });
        } catch (error) {
          // A disk-level failure ends the whole batch; anything else only this op.
          if (isFatalSqliteError(error)) throw error;
          outcomes.push({ ok: false, error });
        }
      }
      if (this.#faults?.consume() === true) {
        const fault = new Error("injected write failure") as Error & { code: string };
        fault.code = "SQLITE_IOERR_FSYNC";
        throw fault;
      }
    });
    try {
      batch.immediate();
    } catch (error) {
      if (!isFatalSqliteError(error)) {
        for (const op of ops) op.reject(error);
        return;
      }
      this.#failure = error;
      const unavailable = new StoreUnavailable("store write failed", { cause: error });
      for (const op of ops) op.reject(unavailable);
      return;
    }
    this.#committed++;
    this.#afterCommit();
    const settle = (): void => {
      ops.forEach((op, index) => {
        const outcome = outcomes[index];
        if (outcome?.ok === true) op.resolve(outcome.value);
        else op.reject(outcome?.error ?? new Error("write lost its outcome"));
      });
    };
    // Nothing is answered before the batch is on disk, refusals included (a refusal may depend
    // on an earlier batch's data); a failed sync rejects every op of the batch.
    this.#onDisk(this.#committed).then(settle, (error: unknown) => {
      for (const op of ops) op.reject(error);
    });
  }

  /** The WAL's length after a commit, from the wal-index header (a restart changes its salt). */
  #afterCommit(): void {
    const header = this.#shmHeader;
    try {
      readSync(this.#shmFd, header, 0, header.length, 0);
    } catch (error) {
      // The batch's waiters are rejected: the store is poisoned before they wait for the sync.
      this.#poison(error, "store lost its wal-index");
      return;
    }
    const frames = BIG_ENDIAN
      ? header.readUInt32BE(WAL_INDEX_MX_FRAME_OFFSET)
      : header.readUInt32LE(WAL_INDEX_MX_FRAME_OFFSET);
    const salt = BIG_ENDIAN ? header.readUInt32BE(WAL_INDEX_SALT_OFFSET) : header.readUInt32LE(WAL_INDEX_SALT_OFFSET);
    if (salt !== this.#walSalt || frames < this.#walCopied) this.#walCopied = 0;
    this.#walSalt = salt;
    this.#walFrames = frames;
    if (frames >= this.#walLimitFrames) this.#walFull = true;
  }

  #notify(campaignId: string): void {
    this.#events.emit("append", campaignId);
  }

  #campaignRow(campaignId: string): CampaignRow | undefined {
    return this.#sql("SELECT * FROM campaigns WHERE campaign_id = ?").get(campaignId) as CampaignRow | undefined;
  }

  #deviceIds(campaignId: string): string[] {
    // Only the column it needs (the row also holds the signed roster); used with pluck() only.
    const ids = this.#sql("SELECT device_ids FROM campaigns WHERE campaign_id = ?").pluck().get(campaignId) as
      | string
      | undefined;
    if (ids === undefined) throw new UnknownCampaign();
    return JSON.parse(ids) as string[];
  }

  /** Appends one inbox item and its delivery rows for every device of the current roster. */
  #append(
    campaignId: string,
    kind: "envelope" | "photo",
    itemId: string,
    envelope: Uint8Array | null,
    chunkCount: number | null,
    receivedAt: number,
    devices: readonly string[] = this.#deviceIds(campaignId),
  ): void {
    const { lastInsertRowid } = this.#sql(
      "INSERT INTO inbox (campaign_id, kind, item_id, envelope, chunk_count, received_at) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(campaignId, kind, itemId, envelope, chunkCount, receivedAt);
    const deliver = this.#sql("INSERT INTO deliveries (campaign_id, device_id, seq) VALUES (?, ?, ?)");
    for (const device of devices) deliver.run(campaignId, device, lastInsertRowid);
  }

  /** Deletes an inbox item nobody still has to receive; a delivered photo loses its chunks. */
  #dropIfDelivered(campaignId: string, seq: number): void {
    const left = this.#sql("SELECT 1 FROM deliveries WHERE seq = ? LIMIT 1").get(seq);
    if (left !== undefined) return;
    const item = this.#sql("SELECT kind, item_id FROM inbox WHERE seq = ?").get(seq) as
      | Pick<InboxRow, "kind" | "item_id">
      | undefined;
    if (item === undefined) return;
    if (item.kind === "photo") {
      this.#sql("DELETE FROM photo_chunks WHERE campaign_id = ? AND photo_id = ?").run(campaignId, item.item_id);
      this.#sql("UPDATE photos SET state = 2 WHERE campaign_id = ? AND photo_id = ?").run(campaignId, item.item_id);
    }
    this.#sql("DELETE FROM inbox WHERE seq = ?").run(seq);
  }

  // --- lifecycle and health

  async ping(): Promise<void> {
    await this.#read(() => this.#sql("SELECT 1").get());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Writes already queued are committed (or rejected) and synced before the connection goes.
    while (this.#queue.length > 0) this.#flush();
    await this.#onDisk(this.#committed).catch(() => undefined);
    this.#closed = true;
    this.#events.removeAllListeners();
    // The checkpointer's connection closes first (after its running checkpoint): never the last.
    await this.#checkpointer.close();
    closeSync(this.#walFd);
    closeSync(this.#shmFd);
    // After a failed WAL sync the connection is NOT closed: closing runs a checkpoint, which
    // copies WAL frames into the database without re-reading their checksums, and after a write
    // error the kernel may have dropped those pages. The next start recovers from the WAL, which
    // checks every frame. (The handle goes with the process; a poisoned store is not reused.)
    if (this.#failure === undefined) this.#db.close();
  }

  // --- campaigns and rosters

  async createCampaign(record: CampaignRecord): Promise<boolean> {
    return this.#write(() => {
      const { changes } = this.#sql(
        `INSERT INTO campaigns (campaign_id, root_public_key, roster, roster_serial, device_ids, device_signing_keys, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ).run(
        record.campaignId,
        record.rootPublicKey,
        record.roster,
        record.rosterSerial,
        JSON.stringify(record.deviceIds),
        JSON.stringify(record.deviceSigningKeys),
        record.createdAt,
      );
      return changes === 1;
    });
  }

  async getCampaign(campaignId: string): Promise<CampaignRecord | undefined> {
    const row = await this.#read(() => this.#campaignRow(campaignId));
    if (row === undefined) return undefined;
    return {
      campaignId: row.campaign_id,
      rootPublicKey: row.root_public_key,
      roster: bytes(row.roster),
      rosterSerial: row.roster_serial,
      deviceIds: JSON.parse(row.device_ids) as string[],
      deviceSigningKeys: JSON.parse(row.device_signing_keys) as Record<string, string>,
      createdAt: row.created_at,
    };
  }

  async updateRoster(record: CampaignRecord): Promise<boolean> {
    return this.#write(() => {
      const row = this.#campaignRow(record.campaignId);
      if (row === undefined || record.rosterSerial <= row.roster_serial) return false;
      this.#sql(
        `UPDATE campaigns SET root_public_key = ?, roster = ?, roster_serial = ?, device_ids = ?, device_signing_keys = ?
           WHERE campaign_id = ?`,
      ).run(
        record.rootPublicKey,
        record.roster,
        record.rosterSerial,
        JSON.stringify(record.deviceIds),
        JSON.stringify(record.deviceSigningKeys),
        record.campaignId,
      );
      // Devices that left the roster no longer hold data back: drop their deliveries.
      const kept = new Set(record.deviceIds);
      const removed = (JSON.parse(row.device_ids) as string[]).filter((device) => !kept.has(device));
      for (const device of removed) {
        const seqs = this.#sql("SELECT seq FROM deliveries WHERE campaign_id = ? AND device_id = ?")
          .pluck()
          .all(record.campaignId, device) as number[];
        this.#sql("DELETE FROM deliveries WHERE campaign_id = ? AND device_id = ?").run(record.campaignId, device);
        for (const seq of seqs) this.#dropIfDelivered(record.campaignId, seq);
        this.#sql("DELETE FROM epoch_keys WHERE campaign_id = ? AND device_id = ?").run(record.campaignId, device);
      }
      return true;
    });
  }

  async putEpochKeys(campaignId: string, deviceId: string, signedEpochKeys: Uint8Array): Promise<void> {
    await this.#write(() => {
      if (this.#campaignRow(campaignId) === undefined) throw new UnknownCampaign();
      this.#sql(
        `INSERT INTO epoch_keys (campaign_id, device_id, document) VALUES (?, ?, ?)
           ON CONFLICT DO UPDATE SET document = excluded.document`,
      ).run(campaignId, deviceId, signedEpochKeys);
    });
  }

  async getEpochKeys(campaignId: string): Promise<Readonly<Record<string, Uint8Array>>> {
    const rows = await this.#read(
      () =>
        this.#sql("SELECT device_id, document FROM epoch_keys WHERE campaign_id = ?").all(campaignId) as {
          device_id: string;
          document: Buffer;
        }[],
    );
    const out: Record<string, Uint8Array> = {};
    for (const row of rows) out[row.device_id] = bytes(row.document);
    return out;
  }

  // --- invites and volunteers

  async addInvites(campaignId: string, invites: readonly { storedHash: string; expiresAt: number }[]): Promise<void> {
    await this.#write(() => {
      if (this.#campaignRow(campaignId) === undefined) throw new UnknownCampaign();
      const insert = this.#sql(
        "INSERT INTO invites (campaign_id, stored_hash, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      );
      for (const invite of invites) insert.run(campaignId, invite.storedHash, invite.expiresAt);
    });
  }

  async inviteLive(campaignId: string, storedHash: string, now: number): Promise<boolean> {
    const row = await this.#read(
      () =>
        this.#sql("SELECT expires_at FROM invites WHERE campaign_id = ? AND stored_hash = ?").get(
          campaignId,
          storedHash,
        ) as { expires_at: number } | undefined,
    );
    return row !== undefined && row.expires_at > now;
  }

  async redeemInvite(
    campaignId: string,
    storedHash: string,
    volunteer: VolunteerRecord,
    now: number,
  ): Promise<RedeemResult> {
    return this.#write(() => {
      const invite = this.#sql("SELECT expires_at FROM invites WHERE campaign_id = ? AND stored_hash = ?").get(
        campaignId,
        storedHash,
      ) as { expires_at: number } | undefined;
      if (invite === undefined || invite.expires_at <= now) return { status: "unknown" };
      const taken = this.#sql("SELECT 1 FROM volunteers WHERE campaign_id = ? AND pseudonym = ?").get(
        campaignId,
        volunteer.pseudonym,
      );
      if (taken !== undefined) return { status: "pseudonym-taken" };
      this.#sql("DELETE FROM invites WHERE campaign_id = ? AND stored_hash = ?").run(campaignId, storedHash);
      this.#sql(
        `INSERT INTO volunteers (campaign_id, pseudonym, signing_key, encryption_key, duress_key, enrolled_at, revoked)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        campaignId,
        volunteer.pseudonym,
        volunteer.signingKey,
        volunteer.encryptionKey,
        volunteer.duressKey ?? null,
        volunteer.enrolledAt,
        volunteer.revoked ? 1 : 0,
      );
      return { status: "redeemed" };
    });
  }

  async getVolunteer(campaignId: string, pseudonym: string): Promise<VolunteerRecord | undefined> {
    const row = await this.#read(
      () =>
        this.#sql("SELECT * FROM volunteers WHERE campaign_id = ? AND pseudonym = ?").get(campaignId, pseudonym) as
          | VolunteerRow
          | undefined,
    );
    return row === undefined ? undefined : volunteerFromRow(row);
  }

  async listVolunteers(campaignId: string): Promise<readonly VolunteerRecord[]> {
    const rows = await this.#read(
      () =>
        this.#sql("SELECT * FROM volunteers WHERE campaign_id = ? ORDER BY pseudonym").all(
          campaignId,
        ) as VolunteerRow[],
    );
    return rows.map(volunteerFromRow);
  }

  async revokeVolunteer(campaignId: string, pseudonym: string): Promise<void> {
    await this.#write(() => {
      this.#sql("UPDATE volunteers SET revoked = 1 WHERE campaign_id = ? AND pseudonym = ?").run(campaignId, pseudonym);
      this.#sql("DELETE FROM mailbox WHERE campaign_id = ? AND pseudonym = ?").run(campaignId, pseudonym);
    });
  }

  // --- authentication

  async burnChallenge(challenge: string, expiresAt: number): Promise<boolean> {
    return this.#write(
      () =>
        this.#sql("INSERT INTO challenges (challenge, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING").run(
          challenge,
          expiresAt,
        ).changes === 1,
    );
  }

  async relaySecret(candidate: Uint8Array): Promise<Uint8Array> {
    return this.#write(() => {
      this.#sql("INSERT INTO relay_secret (id, secret) VALUES (1, ?) ON CONFLICT DO NOTHING").run(candidate);
      const row = this.#sql("SELECT secret FROM relay_secret WHERE id = 1").get() as { secret: Buffer };
      return bytes(row.secret);
    });
  }

  // --- submissions and coordinator inboxes

  async submitEnvelope(
    campaignId: string,
    messageId: string,
    envelope: Uint8Array,
    receivedAt: number,
  ): Promise<SubmitResult> {
    const digest = sha256(envelope);
    const result = await this.#write((): SubmitResult => {
      const seen = this.#sql("SELECT digest FROM messages WHERE campaign_id = ? AND message_id = ?").get(
        campaignId,
        messageId,
      ) as { digest: Buffer } | undefined;
      if (seen !== undefined) return { status: seen.digest.equals(digest) ? "duplicate" : "conflict" };
      // Read once: it proves the campaign exists and gives the devices to fan out to.
      const devices = this.#deviceIds(campaignId);
      this.#sql("INSERT INTO messages (campaign_id, message_id, digest, received_at) VALUES (?, ?, ?, ?)").run(
        campaignId,
        messageId,
        digest,
        receivedAt,
      );
      this.#append(campaignId, "envelope", messageId, envelope, null, receivedAt, devices);
      return { status: "accepted" };
    });
    if (result.status === "accepted") this.#notify(campaignId);
    return result;
  }

  async createPhoto(
    campaignId: string,
    photoId: string,
    chunkCount: number,
    now: number,
  ): Promise<"created" | "exists" | "conflict"> {
    return this.#write(() => {
      const row = this.#sql("SELECT chunk_count FROM photos WHERE campaign_id = ? AND photo_id = ?").get(
        campaignId,
        photoId,
      ) as { chunk_count: number } | undefined;
      if (row !== undefined) return row.chunk_count === chunkCount ? "exists" : "conflict";
      if (this.#campaignRow(campaignId) === undefined) throw new UnknownCampaign();
      this.#sql("INSERT INTO photos (campaign_id, photo_id, chunk_count, created_at) VALUES (?, ?, ?, ?)").run(
        campaignId,
        photoId,
        chunkCount,
        now,
      );
      return "created";
    });
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
    const result = await this.#write((): ChunkRunResult => {
      const photo = this.#sql(
        "SELECT chunk_count, received_chunks, state FROM photos WHERE campaign_id = ? AND photo_id = ?",
      ).get(campaignId, photoId) as { chunk_count: number; received_chunks: number; state: number } | undefined;
      if (photo === undefined) return { status: "unknown-photo" };
      const last = first + chunks.length - 1;
      if (!Number.isInteger(first) || first < 0 || chunks.length === 0 || last >= photo.chunk_count) {
        return { status: "conflict" };
      }
      // Delivered and deleted: a late retry cannot be checked any more, and must not re-deliver.
      if (photo.state === 2) return { status: "stored", stored: 0, duplicate: chunks.length, complete: true };
      const held = new Map(
        (
          this.#sql(
            `SELECT chunk_index, data FROM photo_chunks
               WHERE campaign_id = ? AND photo_id = ? AND chunk_index BETWEEN ? AND ?`,
          ).all(campaignId, photoId, first, last) as { chunk_index: number; data: Buffer }[]
        ).map((row) => [row.chunk_index, row.data]),
      );
      // Every check before any write: a refused run writes nothing.
      for (const [offset, chunk] of chunks.entries()) {
        const existing = held.get(first + offset);
        if (existing !== undefined && !existing.equals(chunk)) return { status: "conflict" };
      }
      const insert = this.#sql(
        "INSERT INTO photo_chunks (campaign_id, photo_id, chunk_index, data) VALUES (?, ?, ?, ?)",
      );
      let stored = 0;
      for (const [offset, chunk] of chunks.entries()) {
        if (held.has(first + offset)) continue;
        insert.run(campaignId, photoId, first + offset, chunk);
        stored++;
      }
      if (stored === 0) {
        return { status: "stored", stored, duplicate: chunks.length, complete: photo.state === 1 };
      }
      const received = photo.received_chunks + stored;
      const complete = received === photo.chunk_count;
      this.#sql("UPDATE photos SET received_chunks = ?, state = ? WHERE campaign_id = ? AND photo_id = ?").run(
        received,
        complete ? 1 : 0,
        campaignId,
        photoId,
      );
      if (complete) this.#append(campaignId, "photo", photoId, null, photo.chunk_count, now);
      return { status: "stored", stored, duplicate: chunks.length - stored, complete };
    });
    if (result.status === "stored" && result.complete && result.stored > 0) this.#notify(campaignId);
    return result;
  }

  async listPhotoChunks(campaignId: string, photoId: string): Promise<readonly number[] | undefined> {
    return this.#read(() => {
      const photo = this.#sql("SELECT chunk_count, state FROM photos WHERE campaign_id = ? AND photo_id = ?").get(
        campaignId,
        photoId,
      ) as { chunk_count: number; state: number } | undefined;
      if (photo === undefined) return undefined;
      // A delivered photo counts as fully held, so a resuming client uploads nothing.
      if (photo.state === 2) return Array.from({ length: photo.chunk_count }, (_, i) => i);
      return this.#sql(
        "SELECT chunk_index FROM photo_chunks WHERE campaign_id = ? AND photo_id = ? ORDER BY chunk_index",
      )
        .pluck()
        .all(campaignId, photoId) as number[];
    });
  }

  async getPhotoChunk(campaignId: string, photoId: string, index: number): Promise<Uint8Array | undefined> {
    const row = await this.#read(
      () =>
        this.#sql(
          `SELECT c.data FROM photo_chunks c JOIN photos p USING (campaign_id, photo_id)
             WHERE c.campaign_id = ? AND c.photo_id = ? AND c.chunk_index = ? AND p.state = 1`,
        ).get(campaignId, photoId, index) as { data: Buffer } | undefined,
    );
    return row === undefined ? undefined : bytes(row.data);
  }

  async readInbox(
    campaignId: string,
    deviceId: string,
    limit: number,
    afterCursor?: string,
  ): Promise<readonly InboxItem[]> {
    const after = afterCursor === undefined ? 0 : Number.parseInt(afterCursor, 10);
    const rows = await this.#read(
      () =>
        this.#sql(
          `SELECT i.seq, i.kind, i.item_id, i.envelope, i.chunk_count, i.received_at
             FROM deliveries d JOIN inbox i ON i.seq = d.seq
             WHERE d.campaign_id = ? AND d.device_id = ? AND d.seq > ?
             ORDER BY d.seq LIMIT ?`,
        ).all(
          campaignId,
          deviceId,
          Number.isSafeInteger(after) ? after : 0,
          Math.max(0, Math.trunc(limit)),
        ) as InboxRow[],
    );
    return rows.map((row): InboxItem => {
      const cursor = String(row.seq);
      if (row.kind === "photo") {
        return {
          kind: "photo",
          cursor,
          photoId: row.item_id,
          chunkCount: row.chunk_count ?? 0,
          receivedAt: row.received_at,
        };
      }
      return {
        kind: "envelope",
        cursor,
        messageId: row.item_id,
        envelope: bytes(row.envelope ?? Buffer.alloc(0)),
        receivedAt: row.received_at,
      };
    });
  }

  async ackInbox(campaignId: string, deviceId: string, cursors: readonly string[]): Promise<number> {
    return this.#write(() => {
      const remove = this.#sql("DELETE FROM deliveries WHERE campaign_id = ? AND device_id = ? AND seq = ?");
      let acked = 0;
      for (const cursor of cursors) {
        if (!/^[0-9]{1,15}$/.test(cursor)) continue;
        const seq = Number(cursor);
        if (remove.run(campaignId, deviceId, seq).changes === 0) continue;
        acked++;
        this.#dropIfDelivered(campaignId, seq);
      }
      return acked;
    });
  }

  async onInboxAppend(listener: InboxListener): Promise<() => Promise<void>> {
    this.#usable();
    // A listener's exception must not break the write path that emitted the event.
    const safe = (campaignId: string): void => {
      try {
        listener(campaignId);
      } catch {
        // the listener owns its errors
      }
    };
    this.#events.on("append", safe);
    return async () => {
      this.#events.off("append", safe);
    };
  }

  // --- volunteer mailboxes

  async putMailbox(
    campaignId: string,
    pseudonym: string,
    item: MailboxItem,
    expiresAt: number,
  ): Promise<"stored" | "duplicate" | "unknown-volunteer"> {
    return this.#write(() => {
      const volunteer = this.#sql("SELECT revoked FROM volunteers WHERE campaign_id = ? AND pseudonym = ?").get(
        campaignId,
        pseudonym,
      ) as { revoked: number } | undefined;
      if (volunteer === undefined || volunteer.revoked !== 0) return "unknown-volunteer";
      const { changes } = this.#sql(
        `INSERT INTO mailbox (campaign_id, pseudonym, message_id, message, expires_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT DO NOTHING`,
      ).run(campaignId, pseudonym, item.messageId, item.message, expiresAt);
      return changes === 1 ? "stored" : "duplicate";
    });
  }

  async readMailbox(
    campaignId: string,
    pseudonym: string,
    limit: number,
    now: number,
  ): Promise<readonly MailboxItem[]> {
    const rows = await this.#read(
      () =>
        this.#sql(
          `SELECT message_id, message FROM mailbox WHERE campaign_id = ? AND pseudonym = ? AND expires_at > ?
             ORDER BY seq LIMIT ?`,
        ).all(campaignId, pseudonym, now, Math.max(0, Math.trunc(limit))) as {
          message_id: string;
          message: Buffer;
        }[],
    );
    return rows.map((row) => ({ messageId: row.message_id, message: bytes(row.message) }));
  }

  async ackMailbox(campaignId: string, pseudonym: string, messageIds: readonly string[]): Promise<number> {
    return this.#write(() => {
      const remove = this.#sql("DELETE FROM mailbox WHERE campaign_id = ? AND pseudonym = ? AND message_id = ?");
      let removed = 0;
      for (const messageId of messageIds) removed += remove.run(campaignId, pseudonym, messageId).changes;
      return removed;
    });
  }

  // --- limits and retention

  async mergeRateBuckets(draws: readonly BucketDraw[], at: number): Promise<readonly StoredBucket[]> {
    return this.#write(() => {
      const rows = this.#sql("SELECT * FROM rate_buckets").all() as StoredBucketRow[];
      const stored = new Map(rows.map((row) => [row.bucket, bucketFromRow(row)]));
      const upsert = this.#sql(
        `INSERT INTO rate_buckets (bucket, tokens, at, capacity, refill) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET tokens = excluded.tokens, at = excluded.at,
           capacity = excluded.capacity, refill = excluded.refill`,
      );
      const remove = this.#sql("DELETE FROM rate_buckets WHERE bucket = ?");
      const merged = mergeBuckets(stored, draws, at);
      for (const bucket of merged.write) {
        upsert.run(bucket.bucket, bucket.tokens, bucket.at, bucket.capacity, bucket.refillPerSecond);
      }
      for (const bucket of merged.remove) remove.run(bucket);
      return merged.kept;
    });
  }

  async expire(olderThan: number, now: number): Promise<number> {
    return this.#write(() => {
      let removed = 0;
      const run = (sql: string, ...params: unknown[]): void => {
        removed += this.#sql(sql).run(...params).changes;
      };
      // Complete photos' inbox items go with their photo, whatever the item's own age.
      run(
        `DELETE FROM inbox WHERE kind = 'photo' AND EXISTS (SELECT 1 FROM photos p
           WHERE p.campaign_id = inbox.campaign_id AND p.photo_id = inbox.item_id AND p.created_at < ?)`,
        olderThan,
      );
      run("DELETE FROM inbox WHERE received_at < ?", olderThan);
      run("DELETE FROM photos WHERE created_at < ?", olderThan);
      run("DELETE FROM messages WHERE received_at < ?", olderThan);
      run("DELETE FROM invites WHERE expires_at <= ?", now);
      run("DELETE FROM mailbox WHERE expires_at <= ?", now);
      run("DELETE FROM challenges WHERE expires_at <= ?", now);
      return removed;
    });
  }
}

function volunteerFromRow(row: VolunteerRow): VolunteerRecord {
  return {
    campaignId: row.campaign_id,
    pseudonym: row.pseudonym,
    signingKey: row.signing_key,
    encryptionKey: row.encryption_key,
    ...(row.duress_key === null ? {} : { duressKey: row.duress_key }),
    enrolledAt: row.enrolled_at,
    revoked: row.revoked !== 0,
  };
}

function migrate(db: Database.Database): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(`relay database schema ${version} is newer than this relay (${MIGRATIONS.length})`);
  }
  for (let next = version; next < MIGRATIONS.length; next++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[next] ?? "");
      db.pragma(`user_version = ${next + 1}`);
    }).immediate();
  }
}

interface StoredBucketRow {
  bucket: string;
  tokens: number;
  at: number;
  capacity: number;
  refill: number;
}

function bucketFromRow(row: StoredBucketRow): StoredBucket {
  return { bucket: row.bucket, tokens: row.tokens, at: row.at, capacity: row.capacity, refillPerSecond: row.refill };
}

/** The level of a stored bucket at `at` (never above capacity; a clock going back adds nothing). */
export function levelAt(bucket: StoredBucket, at: number): number {
  const elapsed = Math.max(0, at - bucket.at);
  return Math.min(bucket.capacity, bucket.tokens + (elapsed * bucket.refillPerSecond) / 1000);
}

/**
 * mergeRateBuckets' arithmetic (Redis does the same in Lua): what to write, what to delete, and
 * the buckets that stay stored afterwards.
 */
export function mergeBuckets(
  stored: ReadonlyMap<string, StoredBucket>,
  draws: readonly BucketDraw[],
  at: number,
): { write: StoredBucket[]; remove: string[]; kept: StoredBucket[] } {
  const result = new Map(stored);
  const write: StoredBucket[] = [];
  const remove = new Set<string>();
  for (const draw of draws) {
    const current = result.get(draw.bucket);
    // Below zero is a debt (several nodes let the credential through before they merged).
    const level = current === undefined ? draw.level : levelAt(current, at) - draw.taken;
    const next: StoredBucket = {
      bucket: draw.bucket,
      tokens: level,
      at: Math.max(at, current?.at ?? at),
      capacity: draw.capacity,
      refillPerSecond: draw.refillPerSecond,
    };
    result.set(draw.bucket, next);
    write.push(next);
  }
  for (const [name, bucket] of result) {
    if (levelAt(bucket, at) >= bucket.capacity) {
      result.delete(name);
      if (stored.has(name)) remove.add(name);
    }
  }
  return { write: write.filter((w) => result.has(w.bucket)), remove: [...remove], kept: [...result.values()] };
}

function syncDirectory(path: string): void {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
