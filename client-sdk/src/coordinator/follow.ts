// `fetch --follow`: the inbox pushed live over the relay's WebSocket (LiveInbox), each batch
// handled exactly as `fetch` handles a page (written durably, then acked on the socket). A drop
// reconnects with backoff; the relay then sends again everything not acked, and what was already
// written is recognised by id and acked without being written twice. Stopping (the signal) lets
// the item being handled finish and be acked, then closes the connection.

import { TransportError } from "../transport/errors.js";
import { LiveInbox, LiveInboxRefused, type WebSocketConstructor } from "../transport/live-inbox.js";
import type { CoordinatorDevice } from "./device.js";
import { CoordinatorError } from "./errors.js";
import { type FetchOptions, FetchRun, type FetchSummary } from "./fetch.js";
import type { FetchOutput } from "./output.js";
import { abortableSleep } from "./relay-retry.js";

export interface FollowOptions extends Omit<FetchOptions, "limit" | "signal"> {
  /** Aborting it stops the follow after the current item; followInbox then resolves. */
  readonly signal: AbortSignal;
  /** Defaults to globalThis.WebSocket; in Node 20 pass `WebSocket` from the `ws` package. */
  readonly WebSocket?: WebSocketConstructor;
  /** After each batch that wrote, quarantined or acked something: what that batch did. */
  readonly onBatch?: (delta: FetchSummary) => void;
  /** The backlog has been delivered (after every connection). */
  readonly onReady?: () => void;
  /** The connection was lost (or could not be made); the follow reconnects after `retryInMs`. */
  readonly onDrop?: (error: unknown, retryInMs: number) => void;
  /** Reconnect delay: full jitter over initialMs·2^attempt, capped at maxMs. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
}

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 } as const;
/** Refused upgrades (401: the relay no longer knows the session) tried again before giving up. */
const MAX_REFUSED_IN_A_ROW = 3;

/** Follows the inbox until `signal` aborts (resolves with the totals) or a fatal error. */
export async function followInbox(
  device: CoordinatorDevice,
  output: FetchOutput,
  options: FollowOptions,
): Promise<FetchSummary> {
  const { signal } = options;
  const run = new FetchRun(device, output, options);
  await run.start();
  const initialMs = options.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const maxMs = options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs;
  let attempt = 0;
  let refused = 0;
  while (!signal.aborted) {
    const live = new LiveInbox({
      relayUrl: device.config.relayUrl,
      campaignId: device.config.campaignId,
      token: () => device.client.sessionToken(),
      onItems: async (items) => {
        const before = run.summary();
        const acks = await run.batch(items);
        const delta = difference(run.summary(), before);
        if (delta.written + delta.quarantined + delta.alreadyWritten + delta.revoked > 0) options.onBatch?.(delta);
        return acks;
      },
      onReady: () => {
        attempt = 0;
        refused = 0;
        options.onReady?.();
      },
      ...(options.onDrop === undefined ? {} : { onDrop: options.onDrop }),
      ...(options.WebSocket === undefined ? {} : { WebSocket: options.WebSocket }),
      backoff: { initialMs, maxMs },
    });
    const stop = () => live.stop();
    signal.addEventListener("abort", stop, { once: true });
    try {
      await live.run();
    } catch (error) {
      if (signal.aborted) break;
      if (!restartable(error)) throw error;
      if (error instanceof LiveInboxRefused && ++refused > MAX_REFUSED_IN_A_ROW) throw error;
      // A relay that restarted may have forgotten the session; sign in afresh.
      device.client.forgetSession();
      const delay = Math.floor(Math.random() * Math.min(maxMs, initialMs * 2 ** Math.min(attempt++, 30)));
      options.onDrop?.(error, delay);
      await abortableSleep(delay, signal);
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }
  return run.summary();
}

/**
 * Failures the relay can recover from: the connection or a relay request failed (relay down,
 * restarting, overloaded), or the relay refused the upgrade with 401 (a session it forgot).
 * This device's storage failing, or the relay refusing for good, stops the follow.
 */
function restartable(error: unknown): boolean {
  if (error instanceof LiveInboxRefused) return error.status === 401;
  if (error instanceof CoordinatorError) return error.code === "RELAY_RETRY_DEADLINE";
  return error instanceof TransportError && error.shouldRetry();
}

function difference(after: FetchSummary, before: FetchSummary): FetchSummary {
  return {
    written: after.written - before.written,
    photos: after.photos - before.photos,
    quarantined: after.quarantined - before.quarantined,
    alreadyWritten: after.alreadyWritten - before.alreadyWritten,
    waitingForPhotos: after.waitingForPhotos,
    security: after.security - before.security,
    revoked: after.revoked - before.revoked,
  };
}
