// A typed client for the relay's HTTP API. Every request and response is checked against the
// protocol's schemas (the single source of truth); every failure becomes a TransportError that
// says whether to retry.
import {
  API,
  type ApiRoute,
  type AuthRole,
  ackResponse,
  addInvitesResponse,
  apiPath,
  challengeResponse,
  chunkListResponse,
  createPhotoResponse,
  type EnrollRequest,
  enrollResponse,
  epochKeysResponse,
  fromBase64url,
  fromUtf8,
  type InboxItem,
  inboxResponse,
  mailboxResponse,
  OCTET_STREAM,
  putChunkResponse,
  putChunkRunResponse,
  putMailboxResponse,
  registerCampaignResponse,
  revokeResponse,
  rosterResponse,
  type SignedDocumentWire,
  sessionResponse,
  signAuthStatement,
  submitResponse,
  updateRosterResponse,
  utf8,
  volunteerListResponse,
  wireError,
} from "@testigo/protocol";
import type { z } from "zod";
import { RelayProtocolError, RelayRefused, RelayUnreachable } from "./errors.js";
import { fetchTransport, type HttpRequest, type HttpTransport } from "./http.js";
import { checkRelayUrl } from "./relay-url.js";

/** Who a session is for, and how to sign its challenge. */
export interface Credential {
  readonly campaignId: string;
  readonly role: AuthRole;
  readonly principal: string;
  readonly signingPrivateKey: Uint8Array;
}

export interface RelayClientOptions {
  readonly transport?: HttpTransport;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

interface Session {
  readonly token: string;
  readonly expiresAt: number;
}

/** Renew a session this long before the relay would expire it. */
const SESSION_MARGIN_MS = 60_000;

export class RelayClient {
  readonly baseUrl: string;
  private readonly transport: HttpTransport;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private session: Session | undefined;

  constructor(
    relayUrl: string,
    private readonly credential?: Credential,
    options: RelayClientOptions = {},
  ) {
    this.baseUrl = checkRelayUrl(relayUrl);
    this.transport = options.transport ?? fetchTransport;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /** The same relay, acting for another credential. */
  withCredential(credential: Credential): RelayClient {
    return new RelayClient(this.baseUrl, credential, {
      transport: this.transport,
      timeoutMs: this.timeoutMs,
      now: this.now,
    });
  }

  // --- public routes

  async registerCampaign(operatorToken: string, roster: SignedDocumentWire): Promise<string> {
    const body = await this.json(
      API.registerCampaign,
      {},
      { roster },
      registerCampaignResponse,
      `Bearer ${operatorToken}`,
    );
    return body.campaignId;
  }

  async getRoster(campaignId: string): Promise<SignedDocumentWire> {
    return (await this.json(API.getRoster, { campaignId }, undefined, rosterResponse)).roster;
  }

  async getEpochKeys(campaignId: string): Promise<Readonly<Record<string, SignedDocumentWire[]>>> {
    return (await this.json(API.getEpochKeys, { campaignId }, undefined, epochKeysResponse)).devices;
  }

  async enroll(campaignId: string, request: EnrollRequest): Promise<string> {
    return (await this.json(API.enroll, { campaignId }, request, enrollResponse)).pseudonym;
  }

  // --- coordinator routes

  async putRoster(roster: SignedDocumentWire): Promise<number> {
    return (await this.authed(API.putRoster, {}, { roster }, updateRosterResponse)).serial;
  }

  async putEpochKeys(documents: readonly SignedDocumentWire[]): Promise<void> {
    await this.authedRaw(API.putEpochKeys, {}, jsonBody({ documents }));
  }

  async addInvites(invites: readonly { storedHash: string; expiresAt: number }[]): Promise<number> {
    return (await this.authed(API.addInvites, {}, { invites }, addInvitesResponse)).count;
  }

  async readInbox(limit: number, after?: string): Promise<InboxItem[]> {
    const query = new URLSearchParams({ limit: String(limit), ...(after === undefined ? {} : { after }) });
    return (await this.authed(API.readInbox, {}, undefined, inboxResponse, `?${query}`)).items;
  }

  async ackInbox(cursors: readonly string[]): Promise<number> {
    return (await this.authed(API.ackInbox, {}, { cursors }, ackResponse)).acked;
  }

  async getChunk(photoId: string, index: number): Promise<Uint8Array> {
    return (await this.authedRaw(API.getChunk, { photoId, index })).body;
  }

  async putMailbox(pseudonym: string, message: Uint8Array): Promise<string> {
    const response = await this.authedRaw(API.putMailbox, { pseudonym }, { type: OCTET_STREAM, bytes: message });
    return parseJson(response.body, putMailboxResponse).messageId;
  }

  async listVolunteers(): Promise<z.infer<typeof volunteerListResponse>> {
    return this.authed(API.listVolunteers, {}, undefined, volunteerListResponse);
  }

  async revokeVolunteer(pseudonym: string): Promise<void> {
    await this.authed(API.revokeVolunteer, { pseudonym }, {}, revokeResponse);
  }

  // --- volunteer routes

  /** Submits a sealed envelope; resolves once the relay has durably accepted it (also on a retry). */
  async submitEnvelope(envelope: Uint8Array): Promise<string> {
    const response = await this.authedRaw(API.submitEnvelope, {}, { type: OCTET_STREAM, bytes: envelope });
    return parseJson(response.body, submitResponse).messageId;
  }

  async createPhoto(photoId: string, chunkCount: number): Promise<void> {
    await this.authed(API.createPhoto, { photoId }, { chunkCount }, createPhotoResponse);
  }

  async listChunks(photoId: string): Promise<number[]> {
    return (await this.authed(API.listChunks, { photoId }, undefined, chunkListResponse)).have;
  }

  async putChunk(photoId: string, index: number, chunk: Uint8Array): Promise<boolean> {
    const response = await this.authedRaw(API.putChunk, { photoId, index }, { type: OCTET_STREAM, bytes: chunk });
    return parseJson(response.body, putChunkResponse).complete;
  }

  /**
   * Uploads consecutive chunks `first`, `first + 1`, … in one request (1 to MAX_CHUNK_RUN, each
   * exactly PHOTO_CHUNK_CIPHERTEXT_BYTES). Resolves once all are durable (also on a retry); a
   * refused run stored nothing. Resolves with `complete` (every chunk of the photo is there).
   */
  async putChunkRun(photoId: string, first: number, chunks: readonly Uint8Array[]): Promise<boolean> {
    const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    const response = await this.authedRaw(API.putChunkRun, { photoId, first }, { type: OCTET_STREAM, bytes });
    const answer = parseJson(response.body, putChunkRunResponse);
    if (answer.first !== first || answer.count !== chunks.length) {
      throw new RelayProtocolError("the relay answered for another chunk run: check the relay's version");
    }
    return answer.complete;
  }

  async readMailbox(): Promise<z.infer<typeof mailboxResponse>["slots"]> {
    return (await this.authed(API.readMailbox, {}, undefined, mailboxResponse)).slots;
  }

  async ackMailbox(messageIds: readonly string[]): Promise<number> {
    return (await this.authed(API.ackMailbox, {}, { messageIds }, ackResponse)).acked;
  }

  // --- sessions

  /**
   * A valid session token for this client's credential (signing in if needed), for transports
   * the client does not drive itself: the live inbox's WebSocket sends it as a subprotocol.
   */
  async sessionToken(): Promise<string> {
    return this.tokenFor(this.requireCredential());
  }

  /** Forgets the session: the next request signs in again (e.g. after the relay refused it). */
  forgetSession(): void {
    this.session = undefined;
  }

  // --- plumbing

  private async json<S extends z.ZodType>(
    route: ApiRoute,
    params: Record<string, string | number>,
    body: unknown,
    schema: S,
    authorization?: string,
  ): Promise<z.infer<S>> {
    const response = await this.send(route, params, body === undefined ? undefined : jsonBody(body), authorization);
    return parseJson(response.body, schema);
  }

  private async authed<S extends z.ZodType>(
    route: ApiRoute,
    params: Record<string, string | number>,
    body: unknown,
    schema: S,
    query = "",
  ): Promise<z.infer<S>> {
    const response = await this.authedRaw(route, params, body === undefined ? undefined : jsonBody(body), query);
    return parseJson(response.body, schema);
  }

  private async authedRaw(
    route: ApiRoute,
    params: Record<string, string | number>,
    body?: { type: string; bytes: Uint8Array },
    query = "",
  ): Promise<{ body: Uint8Array }> {
    const credential = this.requireCredential();
    const token = await this.tokenFor(credential);
    try {
      return await this.send(route, { campaignId: credential.campaignId, ...params }, body, `Bearer ${token}`, query);
    } catch (error) {
      // A session the relay forgot (restart with another store, expiry): sign in again, once.
      if (error instanceof RelayRefused && error.code === "AUTH_FAILED") {
        this.session = undefined;
        const fresh = await this.tokenFor(credential);
        return this.send(route, { campaignId: credential.campaignId, ...params }, body, `Bearer ${fresh}`, query);
      }
      throw error;
    }
  }

  private requireCredential(): Credential {
    if (this.credential === undefined) throw new Error("RelayClient: this request needs a credential");
    return this.credential;
  }

  private async tokenFor(credential: Credential): Promise<string> {
    if (this.session !== undefined && this.session.expiresAt - SESSION_MARGIN_MS > this.now())
      return this.session.token;
    const { challenge } = await this.json(API.challenge, {}, {}, challengeResponse);
    const statement = {
      campaignId: credential.campaignId,
      role: credential.role,
      principal: credential.principal,
      challenge,
    };
    const signature = signAuthStatement(statement, credential.signingPrivateKey);
    const session = await this.json(API.session, {}, { ...statement, signature }, sessionResponse);
    this.session = { token: session.token, expiresAt: session.expiresAt };
    return session.token;
  }

  private async send(
    route: ApiRoute,
    params: Record<string, string | number>,
    body: { type: string; bytes: Uint8Array } | undefined,
    authorization?: string,
    query = "",
  ): Promise<{ body: Uint8Array }> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (authorization !== undefined) headers.authorization = authorization;
    if (body !== undefined) headers["content-type"] = body.type;
    const request: HttpRequest = {
      method: route.method,
      url: `${this.baseUrl}${apiPath(route, params)}${query}`,
      headers,
      ...(body === undefined ? {} : { body: body.bytes }),
      timeoutMs: this.timeoutMs,
    };
    let response: Awaited<ReturnType<HttpTransport>>;
    try {
      response = await this.transport(request);
    } catch (error) {
      throw new RelayUnreachable(this.baseUrl, describeNetworkError(error));
    }
    if (response.status >= 200 && response.status < 300) return response;
    throw errorFromResponse(this.baseUrl, response);
  }
}

function jsonBody(value: unknown): { type: string; bytes: Uint8Array } {
  return { type: "application/json", bytes: utf8(JSON.stringify(value)) };
}

function parseJson<S extends z.ZodType>(bytes: Uint8Array, schema: S): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(bytes));
  } catch {
    throw new RelayProtocolError("the relay answered something that is not JSON: is this a Testigo relay?");
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new RelayProtocolError("the relay's answer does not follow the protocol: check the relay's version");
  return parsed.data;
}

function errorFromResponse(
  relayUrl: string,
  response: { status: number; headers: Readonly<Record<string, string>>; body: Uint8Array },
): Error {
  let parsed: ReturnType<typeof wireError.safeParse> | undefined;
  try {
    parsed = wireError.safeParse(JSON.parse(fromUtf8(response.body)));
  } catch {
    parsed = undefined;
  }
  if (response.status >= 500 && parsed?.data?.error.code !== "STORE_UNAVAILABLE") {
    return new RelayUnreachable(relayUrl, `the relay failed with HTTP ${response.status}`);
  }
  if (parsed?.success !== true) {
    return new RelayProtocolError(`the relay answered HTTP ${response.status} without a Testigo error body`);
  }
  const retryAfter = Number(response.headers["retry-after"]);
  return new RelayRefused(
    parsed.data.error.code,
    response.status,
    parsed.data.error.message,
    Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined,
  );
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "TimeoutError" || error.name === "AbortError") return "the request timed out";
    const cause = (error as { cause?: { code?: string } }).cause;
    if (cause?.code !== undefined) return `network error ${cause.code}`;
    return error.message;
  }
  return "network error";
}

/** Decodes a base64url field the relay sent; throws a protocol error if it is not base64url. */
export function relayBytes(text: string): Uint8Array {
  const bytes = fromBase64url(text);
  if (bytes === undefined) throw new RelayProtocolError("the relay sent a field that is not base64url");
  return bytes;
}
