// Errors thrown by the storage backends. Each has a literal `code`; the relay maps
// "store-unavailable" to 503 (fails closed) and never shows the cause to clients.

/** The backend cannot serve requests: a failed write, a lost connection, a timeout. */
export class StoreUnavailable extends Error {
  readonly code = "store-unavailable" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailable";
  }
}

/** A call named a campaign the store does not know (the routes check first; this is a guard). */
export class UnknownCampaign extends Error {
  readonly code = "unknown-campaign" as const;
  constructor() {
    super("unknown campaign");
    this.name = "UnknownCampaign";
  }
}

export type StoreError = StoreUnavailable | UnknownCampaign;
