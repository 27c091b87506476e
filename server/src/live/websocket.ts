// Registers @fastify/websocket for the live inbox: frame size cap, subprotocol choice (never
// echoing a token), scrubbed error logging, and a graceful close of every socket on shutdown.
import websocket from "@fastify/websocket";
import { LIVE_CLOSE, LIVE_SUBPROTOCOL, MAX_LIVE_CLIENT_FRAME_BYTES } from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import type { RelayLogger } from "../logger.js";
import type { LiveHub } from "./live-hub.js";

/** How long shutdown waits for clients to answer the close handshake before cutting them off. */
export const SHUTDOWN_GRACE_MS = 2_000;

function closeAll(clients: ReadonlySet<WebSocket>): Promise<void> {
  const open = [...clients];
  if (open.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let remaining = open.length;
    const timer = setTimeout(() => {
      for (const client of open) client.terminate();
      resolve();
    }, SHUTDOWN_GRACE_MS);
    for (const client of open) {
      client.once("close", () => {
        remaining -= 1;
        if (remaining === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
      client.close(LIVE_CLOSE.goingAway.code, LIVE_CLOSE.goingAway.reason);
    }
  });
}

/** Queues the plugin (fastify loads it in order, before routes registered after this call). */
export function registerWebsocket(app: FastifyInstance, hub: LiveHub, logger: RelayLogger): void {
  void app.register(websocket, {
    options: {
      maxPayload: MAX_LIVE_CLIENT_FRAME_BYTES,
      // Compression of secrets next to attacker-chosen data leaks them (CRIME/BREACH): off.
      perMessageDeflate: false,
      // Answer with our protocol name only; the token protocol is never echoed back.
      handleProtocols: (protocols) => (protocols.has(LIVE_SUBPROTOCOL) ? LIVE_SUBPROTOCOL : false),
    },
    errorHandler: (err, socket) => {
      logger.warn({ err }, "live socket error");
      // ws reports an oversized frame here after starting its own 1009 close: let that finish.
      if (socket.readyState === socket.OPEN) socket.close(LIVE_CLOSE.internal.code, LIVE_CLOSE.internal.reason);
    },
    // Graceful shutdown: 1001 going-away to every client (they reconnect, maybe to another node).
    preClose: async function (this: FastifyInstance) {
      await closeAll(this.websocketServer.clients);
      await hub.close();
    },
  });
}
