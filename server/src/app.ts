// Builds the relay's fastify application. It NEVER listens: main.ts does, and tests use inject().
import { type ServerOptions, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { LIVE_INBOX_ROUTE, type RelayErrorCode } from "@testigo/protocol";
import Fastify, {
  type ConnectionError,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from "fastify";
import { volunteerActive } from "./auth.js";
import type { AppConfig } from "./config/config.js";
import type { Clock, RelayContext } from "./context.js";
import { errors, RelayError, toWireError } from "./errors.js";
import { guardStore } from "./guarded-store.js";
import { LiveHub } from "./live/live-hub.js";
import { registerWebsocket } from "./live/websocket.js";
import type { RelayLogger } from "./logger.js";
import { Metrics } from "./metrics.js";
import { RateLimiter } from "./rate-limiter.js";
import { RelayKeyring } from "./relay-keys.js";
import { registerAuthRoutes } from "./routes/auth.js";
import { registerCampaignRoutes } from "./routes/campaigns.js";
import { registerEnvelopeRoutes } from "./routes/envelopes.js";
import { registerEpochKeyRoutes } from "./routes/epoch-keys.js";
import { registerHealthRoutes } from "./routes/health.js";
import { registerInboxRoutes } from "./routes/inbox.js";
import { registerInviteRoutes } from "./routes/invites.js";
import { registerLiveInboxRoutes } from "./routes/live-inbox.js";
import { registerMailboxRoutes } from "./routes/mailbox.js";
import { registerPhotoRoutes } from "./routes/photos.js";
import { registerVolunteerRoutes } from "./routes/volunteers.js";
import type { Store } from "./store/store.js";
import { VolunteerStatusCache } from "./volunteer-status.js";

export interface AppDeps {
  readonly store: Store;
  readonly logger: RelayLogger;
  readonly clock?: Clock;
  /** Shared with main.ts so it can report counts; a fresh one by default. */
  readonly metrics?: Metrics;
  /** Server timeouts (main.ts passes the configured ones; inject() ignores them). */
  readonly timeouts?: {
    readonly connectionMs: number;
    readonly requestMs: number;
    readonly keepAliveMs: number;
    /** Time a client has to send its headers (slowloris); at most requestMs. */
    readonly headersMs?: number;
  };
  /** PEM certificate and key: serve HTTPS and WSS directly (run-relay.ts reads the files). */
  readonly tls?: { readonly cert: Uint8Array; readonly key: Uint8Array };
}

/**
 * Node enforces headersTimeout and requestTimeout only when it checks its connections, every
 * `connectionsCheckingInterval` (30 s by default): a slow client would live that long whatever
 * the timeouts. Checking every second (or more often for very short timeouts) closes it promptly.
 */
function nodeServerOptions(timeouts: AppDeps["timeouts"]): ServerOptions {
  if (timeouts === undefined) return {};
  const headersMs = Math.min(timeouts.headersMs ?? timeouts.requestMs, timeouts.requestMs);
  return {
    requestTimeout: timeouts.requestMs,
    headersTimeout: headersMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersMs / 2))),
  };
}

/** What a client whose request never got parsed (bad framing, huge headers, too slow) receives. */
const CLIENT_ERRORS = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: "HEADERS_TOO_LARGE",
    message: "the request's headers are too large (16 KiB at most); send fewer or shorter headers",
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: "REQUEST_TIMEOUT",
    message: "the request was not received in time; send it again, whole and promptly",
  },
} as const satisfies Record<string, { status: number; code: RelayErrorCode; message: string }>;

const FRAMING_ERROR = {
  status: 400,
  code: "MALFORMED_REQUEST",
  message: "the request is not valid HTTP/1.1 (bad framing, header or method); fix the client",
} as const satisfies { status: number; code: RelayErrorCode; message: string };

/** Answers with the documented error body, then closes (the connection's state is unknown). */
function clientErrorHandler(err: ConnectionError, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const answer = CLIENT_ERRORS[err.code as keyof typeof CLIENT_ERRORS] ?? FRAMING_ERROR;
  const body = JSON.stringify({ error: { code: answer.code, message: answer.message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** The store, with `forget` called once each revocation has been written (or has failed). */
function forgetOnRevoke(store: Store, forget: (campaignId: string, pseudonym: string) => void): Store {
  const revoke: Store["revokeVolunteer"] = async (campaignId, pseudonym) => {
    try {
      await store.revokeVolunteer(campaignId, pseudonym);
    } finally {
      forget(campaignId, pseudonym);
    }
  };
  return new Proxy(store, {
    get: (target, property, receiver) =>
      property === "revokeVolunteer" ? revoke : Reflect.get(target, property, receiver),
  });
}

export function buildApp(config: AppConfig, deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Fastify's request logging writes the raw URL and the client's address: replaced below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.jsonBodyLimit,
    trustProxy: false,
    return503OnClosing: true,
    ...(deps.tls === undefined
      ? { http: nodeServerOptions(deps.timeouts) }
      : {
          https: {
            cert: Buffer.from(deps.tls.cert),
            key: Buffer.from(deps.tls.key),
            ...nodeServerOptions(deps.timeouts),
          },
        }),
    ...(deps.timeouts === undefined
      ? {}
      : {
          connectionTimeout: deps.timeouts.connectionMs,
          requestTimeout: deps.timeouts.requestMs,
          keepAliveTimeout: deps.timeouts.keepAliveMs,
        }),
    clientErrorHandler,
    // A malformed URL never reaches a route: answer it like any other bad input.
    frameworkErrors: (err, _request, reply) => {
      const mapped = toWireError(err);
      void (reply as FastifyReply).code(mapped.statusCode).send(mapped.body);
    },
  }) as unknown as FastifyInstance;

  let volunteerStatus: VolunteerStatusCache | undefined;
  // A revocation written through this node is effective here at once (others: within 1 s).
  const store = forgetOnRevoke(guardStore(deps.store, deps.logger), (campaignId, pseudonym) =>
    volunteerStatus?.forget(campaignId, pseudonym),
  );
  volunteerStatus = new VolunteerStatusCache((campaignId, pseudonym) =>
    volunteerActive({ store }, campaignId, pseudonym),
  );
  const keys = new RelayKeyring(store);
  const clock = deps.clock ?? Date.now;
  const limiter = new RateLimiter({
    store,
    keys,
    clock,
    logger: deps.logger,
    ...(config.rateLimit.mergeIntervalMs === undefined ? {} : { intervalMs: config.rateLimit.mergeIntervalMs }),
  });
  const ctx: RelayContext = {
    config,
    store,
    keys,
    limiter,
    clock,
    metrics: deps.metrics ?? new Metrics(),
    logger: deps.logger,
    volunteerStatus,
  };

  app.decorateRequest("session", null);
  // Load (or create) the relay secret and restore the stored rate-limit levels before the first
  // request, so no request's effect on the store includes them. Should the store be down now,
  // the first request that needs them retries.
  app.addHook("onReady", async () => {
    await keys.get().catch(() => undefined);
    await limiter.restore().catch(() => undefined);
    limiter.start();
  });
  app.addHook("onClose", async () => {
    await limiter.stop();
  });
  // Binary bodies (envelopes, chunks, control messages); each route sets its own exact bodyLimit.
  app.addContentTypeParser("application/octet-stream", { parseAs: "buffer" }, (_request, body, done) => {
    done(null, body);
  });

  app.setErrorHandler((err, request, reply) => {
    const mapped = toWireError(err);
    if (mapped.internal) request.log.error({ err, req: request }, "internal error");
    if (mapped.retryAfterSeconds !== undefined) void reply.header("retry-after", String(mapped.retryAfterSeconds));
    return reply.code(mapped.statusCode).send(mapped.body);
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: { code: "NOT_FOUND", message: "no such route; see protocol/spec/relay-api.md" } }),
  );

  // Both hooks below run on every request: callback style, no promise each.
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "(unmatched)";
    ctx.metrics.request(request.method, route, reply.statusCode);
    if (deps.logger.isLevelEnabled("info")) {
      request.log.info({ req: request, res: reply, responseTime: Math.round(reply.elapsedTime) }, "request");
    }
    done();
  });

  // Only the live inbox speaks WebSocket: an upgrade anywhere else is refused before any handler.
  app.addHook("onRequest", (request, reply, done) => {
    if (request.headers.upgrade?.toLowerCase() === "websocket" && request.routeOptions.url !== LIVE_INBOX_ROUTE.path) {
      done(errors.notFound("WebSocket route"));
      return;
    }
    // RFC 9112 §6.3: a request whose Transfer-Encoding does not end in chunked has no reliable
    // length: 400 and close. Node's parser lets `identity` through and only fails when the
    // connection ends, which let a fast route answer first.
    const encoding = request.headers["transfer-encoding"];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== "chunked") {
      reply.header("connection", "close");
      done(new RelayError(FRAMING_ERROR.code, FRAMING_ERROR.message));
      return;
    }
    done();
  });

  const hub = new LiveHub(ctx.store);
  registerWebsocket(app, hub, deps.logger);
  // Registered after the plugin (its onRoute hook must see the route); closes the hub on shutdown.
  void app.register(async (scope) => {
    registerLiveInboxRoutes(scope, ctx, hub);
  });
  app.addHook("onClose", async () => {
    await hub.close();
  });

  registerHealthRoutes(app, ctx);
  registerAuthRoutes(app, ctx);
  registerCampaignRoutes(app, ctx);
  registerEpochKeyRoutes(app, ctx);
  registerInviteRoutes(app, ctx);
  registerEnvelopeRoutes(app, ctx);
  registerPhotoRoutes(app, ctx);
  registerInboxRoutes(app, ctx);
  registerMailboxRoutes(app, ctx);
  registerVolunteerRoutes(app, ctx);
  return app;
}
