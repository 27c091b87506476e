// One store subscription per relay process, fanned out to the live sockets of each campaign.
// With Redis the notification comes from whichever node appended the item, so a coordinator
// connected here hears of a submission made on another node.
import type { Store } from "../store/store.js";

/** What the hub needs of a live connection: "your campaign's inbox grew, read it". */
export interface InboxWaker {
  wake(): void;
}

export class LiveHub {
  readonly #store: Store;
  readonly #byCampaign = new Map<string, Set<InboxWaker>>();
  #subscription: Promise<() => Promise<void>> | undefined;
  #closed = false;

  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Registers a connection, and resolves once the store subscription is live: a connection
   * reads its backlog only after this, so an item appended in between is never missed.
   */
  async add(campaignId: string, waker: InboxWaker): Promise<void> {
    if (this.#closed) throw new Error("live hub closed");
    let set = this.#byCampaign.get(campaignId);
    if (set === undefined) {
      set = new Set();
      this.#byCampaign.set(campaignId, set);
    }
    set.add(waker);
    if (this.#subscription === undefined) {
      const subscription = this.#store.onInboxAppend((id) => this.#dispatch(id));
      this.#subscription = subscription;
      // A failed subscription is retried by the next connection, not cached.
      subscription.catch(() => {
        if (this.#subscription === subscription) this.#subscription = undefined;
      });
    }
    await this.#subscription;
  }

  remove(campaignId: string, waker: InboxWaker): void {
    const set = this.#byCampaign.get(campaignId);
    if (set === undefined) return;
    set.delete(waker);
    if (set.size === 0) this.#byCampaign.delete(campaignId);
  }

  /** Number of live connections (all campaigns). */
  get size(): number {
    let total = 0;
    for (const set of this.#byCampaign.values()) total += set.size;
    return total;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const subscription = this.#subscription;
    this.#subscription = undefined;
    if (subscription === undefined) return;
    const unsubscribe = await subscription.catch(() => undefined);
    await unsubscribe?.().catch(() => undefined);
  }

  #dispatch(campaignId: string): void {
    const set = this.#byCampaign.get(campaignId);
    if (set === undefined) return;
    for (const waker of set) waker.wake();
  }
}
