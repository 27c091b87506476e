// A capturing HTTP proxy on loopback, between volunteers and a relay process: it forwards every
// request unchanged and records what an observer of the relay's traffic (or the relay itself)
// sees of it — method, route pattern, request header names and values (the bearer token's value
// excepted), body size, response status, response header names and values (the date excepted)
// and response size. Each request is also attributed, where the traffic allows, to the principal
// (pseudonym) whose session it belongs to: the session request names it, the session answer
// carries its token, later requests carry the token, and the challenge it signed came from one
// challenge request. (Roster and epoch-key reads are anonymous.) The attribution is for grouping
// requests by command; it is not part of what is compared.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from "node:http";
import type { Socket } from "node:net";
import { routeOf } from "./routes.js";

export interface CapturedRequest {
  /** Which client connection (in order of first use). */
  readonly connection: number;
  /** The principal whose session this request belongs to, if the traffic says so. */
  readonly actor: string | undefined;
  readonly method: string;
  readonly route: string;
  /** Sorted "name: value" lines; authorization as "authorization: Bearer <token>". */
  readonly headers: readonly string[];
  readonly bodySize: number;
  readonly status: number;
  /** Sorted "name: value" lines; date as "date: <date>". */
  readonly responseHeaders: readonly string[];
  readonly responseSize: number;
}

export interface CaptureProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Everything captured since the last call (completed exchanges, in completion order). */
  take(): CapturedRequest[];
  close(): Promise<void>;
}

/** Header values that differ per request by nature and say nothing about the report inside. */
const MASKED: Readonly<Record<string, string>> = {
  authorization: "Bearer <token>",
  date: "<date>",
};

function lines(headers: IncomingHttpHeaders | Record<string, string | string[] | number | undefined>): string[] {
  return Object.entries(headers)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => {
      const lower = name.toLowerCase();
      return `${lower}: ${MASKED[lower] ?? (Array.isArray(value) ? value.join(", ") : String(value))}`;
    })
    .sort();
}

function json(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString("utf8"));
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export async function startCaptureProxy(target: string): Promise<CaptureProxy> {
  const upstream = new URL(target);
  const sockets = new Map<Socket, number>();
  /** Session token → principal, challenge → principal. */
  const tokens = new Map<string, string>();
  const challenges = new Map<string, string>();
  let captured: (Omit<CapturedRequest, "actor"> & { token?: string; challenge?: string })[] = [];
  const server: Server = createServer((req, res) => {
    const socket = req.socket;
    if (!sockets.has(socket)) sockets.set(socket, sockets.size);
    const connection = sockets.get(socket) as number;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const headers = { ...req.headers, host: upstream.host };
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on("data", (chunk: Buffer) => parts.push(chunk));
          answer.on("end", () => {
            const payload = Buffer.concat(parts);
            const route = routeOf(req.method ?? "?", req.url ?? "/");
            const auth = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""))?.[1];
            let challenge: string | undefined;
            if (route === "POST /v1/auth/challenge") challenge = json(payload)?.challenge as string | undefined;
            if (route === "POST /v1/auth/session") {
              const sent = json(body);
              const token = json(payload)?.token;
              if (typeof sent?.challenge === "string") challenge = sent.challenge;
              if (typeof sent?.principal === "string") {
                if (typeof sent.challenge === "string") challenges.set(sent.challenge, sent.principal);
                if (typeof token === "string") tokens.set(token, sent.principal);
              }
            }
            captured.push({
              connection,
              ...(auth === undefined ? {} : { token: auth }),
              ...(challenge === undefined ? {} : { challenge }),
              method: req.method ?? "?",
              route,
              headers: lines(req.headers),
              bodySize: body.length,
              status: answer.statusCode ?? 0,
              responseHeaders: lines(answer.headers),
              responseSize: payload.length,
            });
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(payload);
          });
        },
      );
      forward.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    take() {
      const out = captured.map(({ token, challenge, ...request }) => ({
        ...request,
        actor:
          (token === undefined ? undefined : tokens.get(token)) ??
          (challenge === undefined ? undefined : challenges.get(challenge)),
      }));
      captured = [];
      return out;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
