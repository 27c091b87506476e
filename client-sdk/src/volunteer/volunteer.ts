// An unlocked volunteer device: what the app (or the CLI) does after the PIN was accepted.
// Storage and transport are passed in, so this runs in Node and in a browser alike.

import { REPORT_KIND } from "@testigo/protocol";
import type { DeviceStorage } from "../storage/storage.js";
import type { HttpTransport } from "../transport/http.js";
import { RelayClient } from "../transport/relay-client.js";
import { eraseDevice, erasedByThisProcess, type OwnSlot, ownSlotErased, readKeySlots, unlockDevice } from "./device.js";
import { finishUnlock, refreshCapsule, setDuressPin, unlockWrite } from "./duress.js";
import { WrongPin } from "./errors.js";
import {
  countOutbox,
  isPending,
  loadOutbox,
  type OutboxCounts,
  type QueuedItem,
  queueActa,
  queueMessage,
  queueStatus,
} from "./outbox.js";
import type { IdentityRecord, SyncLogRecord } from "./records.js";
import { DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, defaultSleep, type RetryPolicy } from "./retry.js";
import { type SyncEvent, type SyncResult, syncOutbox } from "./sync.js";
import { bytesOf, VolunteerStore } from "./volunteer-store.js";
import { executeWipe } from "./wipe.js";

/** Sync queues a `checkin` when the last one is older than this (settings.checkinIntervalMs overrides). */
export const DEFAULT_CHECKIN_INTERVAL_MS = 15 * 60 * 1000;
/** The retry budget of the short flush every unlock runs (flush()). */
export const DEFAULT_FLUSH_BUDGET_MS = 3_000;

/**
 * Panic button: crypto-erases the device now, with no PIN (eraseDevice). Afterwards the folder
 * answers every PIN like a fresh device answers a wrong one.
 */
export async function panic(storage: DeviceStorage): Promise<void> {
  await eraseDevice(storage);
}

export interface VolunteerOptions {
  readonly now?: () => number;
  readonly transport?: HttpTransport;
  /** Per-request timeout. */
  readonly requestTimeoutMs?: number;
}

export interface VolunteerStatus {
  readonly pseudonym: string;
  readonly relay: string;
  readonly campaign: string;
  readonly outbox: OutboxCounts;
  readonly lastSyncAt: number | null;
  readonly lastSuccessAt: number | null;
  readonly lastError: string | null;
  readonly notices: number;
}

export interface SyncRunOptions {
  /** Total time the run may spend retrying an unreachable relay before leaving the rest queued. */
  readonly budgetMs: number;
  readonly onEvent?: (event: SyncEvent) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

export class Volunteer {
  private constructor(
    readonly storage: DeviceStorage,
    readonly store: VolunteerStore,
    readonly identity: IdentityRecord,
    /** Which key slot opened. */
    readonly slot: number,
    private readonly options: VolunteerOptions,
    /** The opened slot and its sealed text (undefined: enrollment, fromStore). */
    private readonly own?: OwnSlot,
  ) {}

  /**
   * Unlocks the device with `pin`. WrongPin if it is wrong (the failed-unlock counter counts it;
   * at the limit the device erases itself first). The duress PIN opens the decoy exactly like the
   * PIN opens the real profile, and erases the real profile (duress.ts: its slot in the unlock's
   * own write, its files in finishUnlock), queuing nothing: from then on the decoy goes through
   * the same path as a real unlock, and what it sends (the flush's check-in first) is signed by
   * the duress key, which coordinators flag. Every unlock does the same writes whichever PIN
   * opened (finishUnlock), the last of which re-seals the duress capsule with this profile's sync
   * times. Each step that reads and writes the key-slot file holds the folder's lock.
   */
  static async open(storage: DeviceStorage, pin: string, options: VolunteerOptions = {}): Promise<Volunteer> {
    const opened = await unlockDevice(storage, pin, unlockWrite);
    const store = new VolunteerStore(opened.store);
    const pendingWipe = (await store.mailbox()).pendingWipe;
    if (pendingWipe !== undefined) {
      // A verified wipe an earlier run did not finish (lost ack, crash): its wipe-ack (prepared
      // before, or now) is sent within the flush budget, then everything is erased whether or not
      // it went. The PIN then fails like a wrong PIN on a fresh device: the unlock answers that.
      const volunteer = new Volunteer(storage, store, await store.identity(), opened.slot, options);
      await executeWipe(storage, store, volunteer.client(), { counter: pendingWipe }, volunteer.retryPolicy({}));
      await unlockDevice(storage, pin);
    }
    const own = { slot: opened.slot, sealed: opened.sealed };
    await finishUnlock(storage, store, own, (options.now ?? Date.now)());
    return new Volunteer(storage, store, await store.identity(), opened.slot, options, own);
  }

  /** Wraps an already unlocked store (enrollment, tests). */
  static async fromStore(store: VolunteerStore, options: VolunteerOptions = {}): Promise<Volunteer> {
    return new Volunteer(store.records.storage, store, await store.identity(), -1, options);
  }

  now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * A relay client for this device's sessions. Sessions are opened with the duress key D, by the
   * real profile as by the decoy (whose `duress` pair is D again): the relay accepts either
   * enrolled key, and if the real profile signed with its own key, a relay that looked (one run
   * or imaged by the adversary) would see a pseudonym switch to D at the moment of a duress unlock.
   * Envelopes are still signed by each profile's `signing` key, inside the encryption.
   */
  client(): RelayClient {
    return new RelayClient(
      this.identity.relayUrl,
      {
        campaignId: this.identity.campaignId,
        role: "volunteer",
        principal: this.identity.pseudonym,
        signingPrivateKey: bytesOf(this.identity.duress.privateKey),
      },
      {
        ...(this.options.transport === undefined ? {} : { transport: this.options.transport }),
        ...(this.options.requestTimeoutMs === undefined ? {} : { timeoutMs: this.options.requestTimeoutMs }),
        now: () => this.now(),
      },
    );
  }

  async report(table: string, text: string): Promise<QueuedItem> {
    return this.unlessErased(() => this.queued(queueStatus(this.store, { table, text }, this.now())));
  }

  /**
   * After every queue operation the duress capsule is re-sealed with the outbox's new shape, so a
   * duress unlock right after it queues the same cover items (cover.ts).
   */
  private async queued(queueing: Promise<QueuedItem>): Promise<QueuedItem> {
    const queued = await queueing;
    await refreshCapsule(this.storage, this.store, this.own);
    return queued;
  }

  /**
   * Runs `work`; if it fails, and this profile's slot was overwritten since it opened (another
   * process ran a duress unlock or an erase meanwhile, deleting this profile's records under it),
   * every record this profile can still decrypt (written after that, e.g. the chunks of an acta
   * being queued) is deleted and the failure is a wrong PIN, what the PIN answers from then on.
   */
  private async unlessErased<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const own = this.own;
      // This process's own wipe or revocation erase answers for itself (NOT_ENROLLED).
      if (own === undefined || erasedByThisProcess(this.storage)) throw error;
      const erased = await this.storage
        .exclusive(async () => {
          const file = await readKeySlots(this.storage);
          if (!ownSlotErased(file, own)) return undefined;
          await this.store.records.destroy();
          return new WrongPin(Math.max(1, file.maxFailedUnlocks - file.failedUnlocks));
        })
        .catch(() => undefined);
      throw erased ?? error;
    }
  }

  async acta(input: {
    table: string;
    text?: string;
    photos: readonly Uint8Array[];
    tallies?: Readonly<Record<string, number>>;
  }): Promise<QueuedItem> {
    return this.unlessErased(() => this.queued(queueActa(this.store, input, this.now())));
  }

  /**
   * Sets or replaces the duress PIN (only on a profile opened with its PIN by `open`): a new
   * decoy replaces any previous one, and the duress capsule is sealed to it.
   */
  async setDuressPin(duressPin: string): Promise<void> {
    await this.unlessErased(() => setDuressPin(this.storage, this.store, this.slot, duressPin, this.now(), this.own));
  }

  /** Queues a `checkin` (a sign of life; padded to the same bucket as a status report). */
  async checkin(): Promise<QueuedItem> {
    return this.unlessErased(() => this.queued(this.queueCheckin()));
  }

  private async queueCheckin(): Promise<QueuedItem> {
    const now = this.now();
    const queued = await queueMessage(this.store, { kind: REPORT_KIND.checkin, table: "0", text: "" }, now);
    await this.store.putSyncLog({ ...(await this.store.syncLog()), lastCheckinAt: now });
    return queued;
  }

  /** Queues a check-in unless a short (bucket-0, i.e. not acta) report is already pending. */
  private async checkinUnlessShortQueued(): Promise<void> {
    const pending = (await loadOutbox(this.store)).filter(isPending);
    if (!pending.some((item) => item.type === "envelope" && item.message.kind !== REPORT_KIND.acta))
      await this.queueCheckin();
  }

  /** Queues a check-in if the last one (or the enrollment) is older than the interval. */
  private async checkinIfDue(): Promise<void> {
    const interval = (await this.store.settings()).checkinIntervalMs ?? DEFAULT_CHECKIN_INTERVAL_MS;
    const last = (await this.store.syncLog()).lastCheckinAt ?? this.identity.enrolledAt;
    if (interval > 0 && this.now() - last >= interval) await this.queueCheckin();
  }

  /** The retry policy of one run: `budgetMs` (default: the unlock flush's) of retrying in all. */
  private retryPolicy(options: Partial<SyncRunOptions>): RetryPolicy {
    return {
      deadline: this.now() + (options.budgetMs ?? DEFAULT_FLUSH_BUDGET_MS),
      now: () => this.now(),
      sleep: options.sleep ?? defaultSleep,
      random: options.random ?? Math.random,
      baseDelayMs: DEFAULT_BASE_DELAY_MS,
      maxDelayMs: DEFAULT_MAX_DELAY_MS,
    };
  }

  /**
   * One sync run: a check-in if due, the outbox, the mailbox; then a verified wipe is executed
   * (ack, then erase: `wiped` in the result); otherwise the duress capsule is re-sealed with the
   * new sync times. The decoy (after the duress PIN) runs exactly the same code: it signs with the
   * duress key.
   */
  async sync(options: SyncRunOptions): Promise<SyncResult> {
    return this.unlessErased(() => this.syncRun(options));
  }

  private async syncRun(options: SyncRunOptions): Promise<SyncResult> {
    const retry = this.retryPolicy(options);
    const client = this.client();
    const pending = (await this.store.mailbox()).pendingWipe;
    if (pending !== undefined) {
      await executeWipe(this.storage, this.store, client, { counter: pending }, retry);
      return {
        envelopesSent: 0,
        photosSent: 0,
        chunksSent: 0,
        refused: [],
        controls: [],
        securityNotices: [],
        wiped: true,
      };
    }
    await this.checkinIfDue();
    const result = await syncOutbox(this.store, {
      client,
      retry,
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
      afterSent: () => refreshCapsule(this.storage, this.store, this.own),
    });
    // Recorded by the mailbox read before its ack: set even when the ack (and so the run) failed.
    const wipe = (await this.store.mailbox()).pendingWipe;
    if (wipe !== undefined) {
      await executeWipe(this.storage, this.store, client, { counter: wipe }, retry);
      return { ...result, wiped: true };
    }
    // The decoy, should the duress PIN be entered next, shows this sync as its last one.
    await refreshCapsule(this.storage, this.store, this.own);
    return result;
  }

  /**
   * The short outbox flush every unlock runs (the CLI's unlock and status): a sync with a small
   * retry budget whose outcome is not shown, so unlocking with the PIN and with the duress PIN
   * make the same kind of network traffic and print the same thing.
   */
  async flush(budgetMs: number = DEFAULT_FLUSH_BUDGET_MS): Promise<SyncResult | undefined> {
    try {
      // Every unlock sends one bucket-0 envelope: a check-in when no short report is queued. After
      // a duress unlock the decoy signs it with the duress key: that is the duress alert.
      await this.checkinUnlessShortQueued();
      return await this.sync({ budgetMs });
    } catch {
      return undefined;
    }
  }

  async status(): Promise<VolunteerStatus> {
    return this.unlessErased(() => this.statusNow());
  }

  private async statusNow(): Promise<VolunteerStatus> {
    const counted = countOutbox(await loadOutbox(this.store));
    // A decoy also shows the refused and kept items the real profile had (cover.ts).
    const covered = (await this.store.outboxIndex()).covered;
    const outbox =
      covered === undefined
        ? counted
        : { ...counted, refused: counted.refused + covered.refused, kept: counted.kept + covered.kept };
    const log: SyncLogRecord = await this.store.syncLog();
    const mailbox = await this.store.mailbox();
    return {
      pseudonym: this.identity.pseudonym,
      relay: this.identity.relayUrl,
      campaign: this.identity.campaignId,
      outbox,
      lastSyncAt: log.lastSyncAt ?? null,
      lastSuccessAt: log.lastSuccessAt ?? null,
      lastError: log.lastError ?? null,
      notices: mailbox.received.filter((c) => c.kind === "notice").length,
    };
  }
}
