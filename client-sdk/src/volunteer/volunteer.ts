// An unlocked volunteer device: what the app (or the CLI) does after the PIN was accepted.
// Storage and transport are passed in, so this runs in Node and in a browser alike.
import type { DeviceStorage } from "../storage/storage.js";
import type { HttpTransport } from "../transport/http.js";
import { RelayClient } from "../transport/relay-client.js";
import { unlockDevice } from "./device.js";
import { countOutbox, loadOutbox, type OutboxCounts, type QueuedItem, queueActa, queueStatus } from "./outbox.js";
import type { IdentityRecord, SyncLogRecord } from "./records.js";
import { DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, defaultSleep, type RetryPolicy } from "./retry.js";
import { type SyncEvent, type SyncResult, syncOutbox } from "./sync.js";
import { bytesOf, VolunteerStore } from "./volunteer-store.js";

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
    readonly store: VolunteerStore,
    readonly identity: IdentityRecord,
    /** Which key slot opened (issue 5 needs it for the duress path). */
    readonly slot: number,
    private readonly options: VolunteerOptions,
  ) {}

  /** Unlocks the device with `pin` (WrongPin if it is wrong; the failed-unlock counter counts it). */
  static async open(storage: DeviceStorage, pin: string, options: VolunteerOptions = {}): Promise<Volunteer> {
    const opened = await unlockDevice(storage, pin);
    const store = new VolunteerStore(opened.store);
    return new Volunteer(store, await store.identity(), opened.slot, options);
  }

  /** Wraps an already unlocked store (enrollment, tests). */
  static async fromStore(store: VolunteerStore, options: VolunteerOptions = {}): Promise<Volunteer> {
    return new Volunteer(store, await store.identity(), -1, options);
  }

  now(): number {
    return (this.options.now ?? Date.now)();
  }

  client(): RelayClient {
    return new RelayClient(
      this.identity.relayUrl,
      {
        campaignId: this.identity.campaignId,
        role: "volunteer",
        principal: this.identity.pseudonym,
        signingPrivateKey: bytesOf(this.identity.signing.privateKey),
      },
      {
        ...(this.options.transport === undefined ? {} : { transport: this.options.transport }),
        ...(this.options.requestTimeoutMs === undefined ? {} : { timeoutMs: this.options.requestTimeoutMs }),
        now: () => this.now(),
      },
    );
  }

  async report(table: string, text: string): Promise<QueuedItem> {
    return queueStatus(this.store, { table, text }, this.now());
  }

  async acta(input: {
    table: string;
    text?: string;
    photos: readonly Uint8Array[];
    tallies?: Readonly<Record<string, number>>;
  }): Promise<QueuedItem> {
    return queueActa(this.store, input, this.now());
  }

  async sync(options: SyncRunOptions): Promise<SyncResult> {
    const retry: RetryPolicy = {
      deadline: this.now() + options.budgetMs,
      now: () => this.now(),
      sleep: options.sleep ?? defaultSleep,
      random: options.random ?? Math.random,
      baseDelayMs: DEFAULT_BASE_DELAY_MS,
      maxDelayMs: DEFAULT_MAX_DELAY_MS,
    };
    return syncOutbox(this.store, {
      client: this.client(),
      retry,
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
    });
  }

  async status(): Promise<VolunteerStatus> {
    const outbox = countOutbox(await loadOutbox(this.store));
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
