// One coordinator device's live inbox socket. It pushes the unacked backlog, then new items as
// the store announces them, and acks what the client acks. Memory per socket is bounded: at most
// `windowItems` pushed-but-unacked items (the rest waits in the store, read by cursor when acks
// open the window), and a socket whose send buffer passes `maxBufferedBytes` is dropped with
// 4008 slow-consumer instead of buffering without bound. Nothing is lost by a drop: items stay
// in the store until acked and the next connection sends them again.
import {
  LIVE_CLOSE,
  LIVE_INBOX_ROUTE,
  LIVE_PAGE_ITEMS,
  type LiveCloseName,
  type LiveServerFrame,
  liveClientFrame,
  type SessionClaims,
} from "@testigo/protocol";
import type { RawData, WebSocket } from "ws";
import { rateLimitSession } from "../auth.js";
import type { LiveLimits } from "../config/config.js";
import type { RelayContext } from "../context.js";
import { RelayError } from "../errors.js";
import { wireInboxItem } from "../routes/inbox.js";
import type { InboxWaker, LiveHub } from "./live-hub.js";

/** How often a push waiting for the client to read checks the send buffer again. */
const DRAIN_POLL_MS = 20;

export interface LiveConnectionDeps {
  readonly ctx: RelayContext;
  readonly hub: LiveHub;
  readonly socket: WebSocket;
  readonly session: SessionClaims;
  readonly limits: LiveLimits;
}

/** The close a failure maps to: the store's outage and rate limits have their own codes. */
function closeFor(err: unknown): LiveCloseName {
  if (err instanceof RelayError) {
    switch (err.code) {
      case "STORE_UNAVAILABLE":
        return "storeUnavailable";
      case "RATE_LIMITED":
        return "rateLimited";
      case "NOT_FOUND":
      case "FORBIDDEN":
        return "forbidden";
      default:
        return "internal";
    }
  }
  return "internal";
}

export class LiveConnection implements InboxWaker {
  readonly #deps: LiveConnectionDeps;
  /** Cursors pushed on this socket and not yet acked. */
  readonly #inFlight = new Set<string>();
  #lastCursor: string | undefined;
  #pumping = false;
  #pumpAgain = false;
  #readySent = false;
  #closed = false;
  #alive = true;
  #tick: ReturnType<typeof setInterval> | undefined;

  constructor(deps: LiveConnectionDeps) {
    this.#deps = deps;
  }

  /** Subscribes, wires the socket's events, and pushes the backlog. */
  async start(): Promise<void> {
    const { socket, ctx, hub, session } = this.#deps;
    ctx.metrics.count("live_connections_opened");
    socket.on("message", (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on("pong", () => {
      this.#alive = true;
    });
    socket.on("close", () => this.#cleanup());
    this.#tick = setInterval(() => void this.#onTick(), this.#deps.limits.tickMs);
    this.#tick.unref();
    try {
      await hub.add(session.campaignId, this);
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.wake();
  }

  /** The store announced new items for this campaign (or the window opened): read and push. */
  wake(): void {
    if (this.#closed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    void this.#pump().finally(() => {
      this.#pumping = false;
      if (this.#pumpAgain && !this.#closed) {
        this.#pumpAgain = false;
        this.wake();
      }
    });
  }

  /** Closes with a named code (after an error frame, when there is something to say). */
  close(name: LiveCloseName, error?: { code: RelayError["code"]; message: string }): void {
    if (this.#closed) return;
    this.#closed = true;
    const { socket, ctx } = this.#deps;
    const entry = LIVE_CLOSE[name];
    // Route pattern and reason only: never the campaign, the device or the address.
    ctx.logger.info({ route: LIVE_INBOX_ROUTE.path, close: entry.reason }, "live inbox closed");
    switch (name) {
      case "slowConsumer":
        ctx.metrics.count("live_dropped_slow_consumer");
        break;
      case "storeUnavailable":
        ctx.metrics.count("live_dropped_store_unavailable");
        break;
      case "malformedFrame":
      case "unsupportedData":
        ctx.metrics.count("live_dropped_malformed_frame");
        break;
      case "rateLimited":
        ctx.metrics.count("live_dropped_rate_limited");
        break;
      default:
        break;
    }
    // A slow consumer gets no error frame: it could not read one.
    if (error !== undefined && name !== "slowConsumer") this.#send({ type: "error", ...error });
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) {
      socket.close(entry.code, entry.reason);
    }
    this.#cleanup();
  }

  async #pump(): Promise<void> {
    const { ctx, session, limits } = this.#deps;
    try {
      while (!this.#closed && this.#inFlight.size < limits.windowItems) {
        const room = Math.min(LIVE_PAGE_ITEMS, limits.windowItems - this.#inFlight.size);
        const items = await ctx.store.readInbox(session.campaignId, session.principal, room, this.#lastCursor);
        if (this.#closed) return;
        if (items.length === 0) break;
        if (!(await this.#drained())) {
          this.close("slowConsumer");
          return;
        }
        if (!this.#send({ type: "items", items: items.map(wireInboxItem) })) return;
        for (const item of items) this.#inFlight.add(item.cursor);
        this.#lastCursor = items.at(-1)?.cursor;
        ctx.metrics.count("live_items_pushed", items.length);
        ctx.metrics.count("inbox_items_delivered", items.length);
      }
      if (!this.#readySent && !this.#closed) {
        this.#readySent = true;
        this.#send({ type: "ready" });
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * Waits until the socket's unsent bytes are within the bound; false if they stay above it for
   * drainTimeoutMs (the client is not reading). Only item pushes wait: they are the bulk, so the
   * memory a socket can hold is the bound plus one page plus a few small frames.
   */
  async #drained(): Promise<boolean> {
    const { socket, limits } = this.#deps;
    const deadline = Date.now() + limits.drainTimeoutMs;
    while (socket.bufferedAmount > limits.maxBufferedBytes) {
      if (this.#closed || Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    return !this.#closed;
  }

  #send(frame: LiveServerFrame): boolean {
    const { socket } = this.#deps;
    if (socket.readyState !== socket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closed) return;
    if (isBinary) {
      this.close("unsupportedData");
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(rawText(data));
    } catch {
      this.close("malformedFrame", { code: "MALFORMED_REQUEST", message: "frames must be JSON text" });
      return;
    }
    const parsed = liveClientFrame.safeParse(json);
    if (!parsed.success) {
      this.close("malformedFrame", {
        code: "MALFORMED_REQUEST",
        message: "unknown or invalid frame; see protocol/src/api/live.ts",
      });
      return;
    }
    const frame = parsed.data;
    switch (frame.type) {
      case "ack":
        void this.#ack(frame.cursors);
        break;
      default: {
        const never: never = frame.type;
        throw new Error(`unhandled live frame ${String(never)}`);
      }
    }
  }

  async #ack(cursors: readonly string[]): Promise<void> {
    const { ctx, session } = this.#deps;
    try {
      // Acks write to the store: they count against the credential's rate limit like HTTP acks.
      await rateLimitSession(ctx, session);
      const count = await ctx.store.ackInbox(session.campaignId, session.principal, cursors);
      ctx.metrics.count("inbox_items_acked", count);
      ctx.metrics.count("live_items_acked", count);
      for (const cursor of cursors) this.#inFlight.delete(cursor);
      this.#send({ type: "acked", count });
      this.wake();
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Heartbeat: a socket that missed a pong is dead; the session must still be valid; re-read. */
  async #onTick(): Promise<void> {
    const { socket, ctx, session } = this.#deps;
    if (this.#closed) return;
    if (!this.#alive) {
      socket.terminate();
      this.#cleanup();
      return;
    }
    this.#alive = false;
    socket.ping();
    try {
      // The token's own expiry: nothing about sessions is stored to look up.
      if (session.expiresAt <= ctx.clock()) {
        this.close("sessionEnded", {
          code: "AUTH_REQUIRED",
          message: "the session expired or was closed; open a new session and reconnect",
        });
        return;
      }
      const campaign = await ctx.store.getCampaign(session.campaignId);
      if (campaign === undefined || !campaign.deviceIds.includes(session.principal)) {
        this.close("forbidden", { code: "FORBIDDEN", message: "this device is no longer in the campaign's roster" });
        return;
      }
    } catch (err) {
      this.#fail(err);
      return;
    }
    // A safety net: a notification lost in transit (e.g. Redis pub/sub during a reconnect).
    this.wake();
  }

  #fail(err: unknown): void {
    const name = closeFor(err);
    if (name === "internal") this.#deps.ctx.logger.error({ err }, "live inbox failed");
    const message =
      err instanceof RelayError && name !== "internal" ? err.message : "the relay failed; reconnect later";
    const code = err instanceof RelayError && name !== "internal" ? err.code : "INTERNAL";
    this.close(name, { code, message });
  }

  #cleanup(): void {
    if (this.#tick === undefined) return;
    clearInterval(this.#tick);
    this.#tick = undefined;
    this.#closed = true;
    this.#deps.hub.remove(this.#deps.session.campaignId, this);
    this.#deps.ctx.metrics.count("live_connections_closed");
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}
