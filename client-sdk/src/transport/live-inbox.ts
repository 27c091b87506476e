// A coordinator device's live inbox: connects to the relay's WebSocket, hands each batch of
// items to the caller, acks what the caller processed, and reconnects with backoff and jitter
// when the connection drops. Nothing is lost by a drop: the relay keeps every item until it is
// acked and sends the unacked ones again on the next connection (so a caller must tolerate a
// batch seen twice — it dedupes by message id, as for the HTTP inbox).
//
// Browser-safe: it uses the global WebSocket, or a constructor the caller injects (Node 20 has
// no global WebSocket: pass `ws`'s). The session token travels as a subprotocol, never in the URL.
import {
  apiPath,
  type InboxItem,
  LIVE_CLOSE,
  LIVE_INBOX_ROUTE,
  LIVE_SUBPROTOCOL,
  LIVE_TOKEN_PROTOCOL_PREFIX,
  liveCloseByCode,
  liveServerFrame,
  MAX_INBOX_BATCH,
} from "@testigo/protocol";
import { RelayProtocolError, TransportError } from "./errors.js";
import { checkRelayUrl } from "./relay-url.js";

/** The part of the WHATWG WebSocket the live inbox uses (browsers' and `ws`'s both fit). */
export interface WebSocketLike {
  readonly protocol: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/** The connection dropped (network, relay shutdown, slow consumer, store outage, ...). */
export class LiveInboxDropped extends TransportError {
  readonly code = "LIVE_INBOX_DROPPED" as const;
  override readonly name = "LiveInboxDropped";
  constructor(
    readonly closeCode: number,
    readonly reason: string,
  ) {
    super(`live inbox connection closed (${closeCode}${reason === "" ? "" : ` ${reason}`})`);
  }
  /** Codes the relay names say; anything else (1006: the network) is worth retrying. */
  shouldRetry(): boolean {
    return liveCloseByCode(this.closeCode)?.retry ?? true;
  }
}

/** The relay refused the upgrade (401/403/404: bad session, not a coordinator, no such campaign). */
export class LiveInboxRefused extends TransportError {
  readonly code = "LIVE_INBOX_REFUSED" as const;
  override readonly name = "LiveInboxRefused";
  constructor(readonly status: number) {
    super(`the relay refused the live inbox connection (HTTP ${status}); check the session and the campaign`);
  }
  shouldRetry(): boolean {
    return false;
  }
}

export interface LiveInboxOptions {
  /** https://… (or http:// on loopback / .onion), as for RelayClient. */
  readonly relayUrl: string;
  readonly campaignId: string;
  /** A valid coordinator session token; called before every connection, so renew sessions here. */
  readonly token: () => Promise<string>;
  /**
   * Processes one batch (oldest first). Resolve once the items are safely stored: the cursors
   * returned (all of the batch if none) are acked. A rejection stops the live inbox.
   */
  readonly onItems: (items: readonly InboxItem[]) => Promise<readonly string[] | undefined>;
  /** The backlog of unacked items has been delivered (after every connection). */
  readonly onReady?: () => void;
  /** A retryable drop; the live inbox reconnects after `retryInMs`. */
  readonly onDrop?: (error: TransportError, retryInMs: number) => void;
  /** Defaults to globalThis.WebSocket (browsers); in Node 20 pass `WebSocket` from the `ws` package. */
  readonly WebSocket?: WebSocketConstructor;
  /** Reconnect delay: full jitter over initialMs·2^attempt, capped at maxMs. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  readonly random?: () => number;
}

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 } as const;
const UNEXPECTED_RESPONSE = /Unexpected server response: (\d{3})/;

/** ws:// or wss:// URL of a campaign's live inbox. */
export function liveInboxUrl(relayUrl: string, campaignId: string): string {
  const base = checkRelayUrl(relayUrl).replace(/^http/, "ws");
  return `${base}${apiPath(LIVE_INBOX_ROUTE, { campaignId })}`;
}

export class LiveInbox {
  readonly #options: LiveInboxOptions;
  readonly #url: string;
  readonly #WebSocket: WebSocketConstructor;
  #socket: WebSocketLike | undefined;
  #stopped = false;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #finish: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  /** Batches are processed one after another, in arrival order. */
  #queue: Promise<void> = Promise.resolve();

  constructor(options: LiveInboxOptions) {
    this.#options = options;
    this.#url = liveInboxUrl(options.relayUrl, options.campaignId);
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? undefined;
    if (ctor === undefined) {
      throw new TypeError("no WebSocket in this runtime: pass options.WebSocket (e.g. from the ws package)");
    }
    this.#WebSocket = ctor;
  }

  /**
   * Connects and keeps the inbox live until `stop()` (then resolves) or a fatal error (then
   * rejects with a TransportError whose shouldRetry() is false, or the error onItems threw).
   */
  run(): Promise<void> {
    if (this.#finish !== undefined) throw new Error("LiveInbox.run() called twice");
    return new Promise<void>((resolve, reject) => {
      this.#finish = { resolve, reject };
      void this.#connect();
    });
  }

  /**
   * Stops after the batch being processed (its acks are still sent), then closes the connection;
   * run() resolves. Batches not yet started, and items not acked, come again next time.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    const close = () => {
      this.#socket?.close(LIVE_CLOSE.normal.code, LIVE_CLOSE.normal.reason);
      this.#finish?.resolve();
    };
    void this.#queue.then(close, close);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    let token: string;
    try {
      token = await this.#options.token();
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (this.#stopped) return;
    const socket = new this.#WebSocket(this.#url, [LIVE_SUBPROTOCOL, `${LIVE_TOKEN_PROTOCOL_PREFIX}${token}`]);
    this.#socket = socket;
    let opened = false;
    let handshakeStatus: number | undefined;
    socket.onopen = () => {
      opened = true;
    };
    socket.onerror = (event) => {
      // Node's `ws` names the HTTP status of a refused upgrade; browsers say nothing (then: retry).
      const message = (event as { message?: unknown } | null)?.message;
      const match = typeof message === "string" ? UNEXPECTED_RESPONSE.exec(message) : null;
      if (!opened && match?.[1] !== undefined) handshakeStatus = Number(match[1]);
    };
    socket.onmessage = (event) => this.#onMessage(socket, event.data);
    socket.onclose = (event) => {
      if (this.#socket === socket) this.#socket = undefined;
      if (this.#stopped) return;
      if (handshakeStatus !== undefined && [401, 403, 404].includes(handshakeStatus)) {
        this.#fail(new LiveInboxRefused(handshakeStatus));
        return;
      }
      const dropped = new LiveInboxDropped(event.code, event.reason);
      if (!dropped.shouldRetry()) {
        this.#fail(dropped);
        return;
      }
      this.#scheduleRetry(dropped);
    };
  }

  #onMessage(socket: WebSocketLike, data: unknown): void {
    if (typeof data !== "string") {
      this.#protocolError(socket, "a binary frame");
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      this.#protocolError(socket, "a frame that is not JSON");
      return;
    }
    const parsed = liveServerFrame.safeParse(json);
    if (!parsed.success) {
      this.#protocolError(socket, "an unknown frame");
      return;
    }
    const frame = parsed.data;
    switch (frame.type) {
      case "items":
        this.#enqueue(socket, frame.items);
        break;
      case "ready":
        this.#attempt = 0; // a healthy connection: the next drop starts the backoff afresh
        this.#queue = this.#queue.then(() => this.#options.onReady?.());
        break;
      case "acked":
      case "error":
        // The close that follows an error frame carries its meaning; acked needs nothing.
        break;
      default: {
        const never: never = frame;
        throw new Error(`unhandled live frame ${JSON.stringify(never)}`);
      }
    }
  }

  #enqueue(socket: WebSocketLike, items: readonly InboxItem[]): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#stopped) return;
      let cursors: readonly string[] | undefined;
      try {
        cursors = await this.#options.onItems(items);
      } catch (err) {
        this.#fail(err);
        return;
      }
      const toAck = cursors ?? items.map((item) => item.cursor);
      // If this socket dropped meanwhile the acks are lost; the items come again (caller dedupes).
      if (this.#socket !== socket) return;
      for (let i = 0; i < toAck.length; i += MAX_INBOX_BATCH) {
        socket.send(JSON.stringify({ type: "ack", cursors: toAck.slice(i, i + MAX_INBOX_BATCH) }));
      }
    });
  }

  #protocolError(socket: WebSocketLike, what: string): void {
    socket.close(LIVE_CLOSE.malformedFrame.code, LIVE_CLOSE.malformedFrame.reason);
    this.#fail(new RelayProtocolError(`the relay sent ${what} on the live inbox`));
  }

  #scheduleRetry(error: TransportError): void {
    const initial = this.#options.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs;
    const max = this.#options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.#attempt, 30));
    const delay = Math.floor((this.#options.random ?? Math.random)() * ceiling);
    this.#attempt += 1;
    this.#options.onDrop?.(error, delay);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#connect();
    }, delay);
  }

  #fail(err: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#socket?.close(LIVE_CLOSE.normal.code, LIVE_CLOSE.normal.reason);
    this.#finish?.reject(err);
  }
}
