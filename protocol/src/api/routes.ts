// Every route of the relay's HTTP API, as method + path pattern. The server registers these
// objects and the SDK builds URLs from them, so no path is spelled twice.
import { Malformed } from "../errors.js";

export interface ApiRoute {
  readonly method: "GET" | "POST" | "PUT";
  /** Path with `:name` parameters (fastify syntax). */
  readonly path: string;
}

function route<const M extends ApiRoute["method"], const P extends string>(method: M, path: P) {
  return { method, path } as const;
}

const campaign = "/v1/campaigns/:campaignId";

export const API = {
  challenge: route("POST", "/v1/auth/challenge"),
  session: route("POST", "/v1/auth/session"),
  registerCampaign: route("POST", "/v1/campaigns"),
  getRoster: route("GET", `${campaign}/roster`),
  putRoster: route("PUT", `${campaign}/roster`),
  getEpochKeys: route("GET", `${campaign}/epoch-keys`),
  putEpochKeys: route("PUT", `${campaign}/epoch-keys`),
  addInvites: route("POST", `${campaign}/invites`),
  enroll: route("POST", `${campaign}/enroll`),
  submitEnvelope: route("POST", `${campaign}/envelopes`),
  createPhoto: route("PUT", `${campaign}/photos/:photoId`),
  listChunks: route("GET", `${campaign}/photos/:photoId/chunks`),
  putChunk: route("PUT", `${campaign}/photos/:photoId/chunks/:index`),
  putChunkRun: route("PUT", `${campaign}/photos/:photoId/chunk-runs/:first`),
  getChunk: route("GET", `${campaign}/photos/:photoId/chunks/:index`),
  readInbox: route("GET", `${campaign}/inbox`),
  ackInbox: route("POST", `${campaign}/inbox/ack`),
  putMailbox: route("POST", `${campaign}/mailboxes/:pseudonym`),
  readMailbox: route("GET", `${campaign}/mailbox`),
  ackMailbox: route("POST", `${campaign}/mailbox/ack`),
  listVolunteers: route("GET", `${campaign}/volunteers`),
  revokeVolunteer: route("POST", `${campaign}/volunteers/:pseudonym/revoke`),
  healthz: route("GET", "/healthz"),
  readyz: route("GET", "/readyz"),
  metrics: route("GET", "/metrics"),
} as const;

export type ApiRouteName = keyof typeof API;

/** Fills a route's `:name` parameters (URL-encoded); throws Malformed if one is missing or not well-formed text. */
export function apiPath(route: ApiRoute, params: Readonly<Record<string, string | number>> = {}): string {
  return route.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Malformed(`apiPath: missing parameter ${name} for ${route.path}`);
    try {
      return encodeURIComponent(String(value));
    } catch {
      throw new Malformed(`apiPath: parameter ${name} is not well-formed text`);
    }
  });
}

/** Content type of envelope, chunk and control-message bodies. */
export const OCTET_STREAM = "application/octet-stream";
