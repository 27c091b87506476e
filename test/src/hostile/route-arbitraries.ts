// One fast-check arbitrary of HOSTILE requests per route of `API`: malformed JSON, wrong types,
// huge and empty fields, prototype-pollution keys, invalid base64, wrong lengths, truncated and
// conflicting chunks and envelopes, wrong signatures, replayed challenges, and unauthenticated,
// garbage, forged, tampered, expired, revoked, cross-campaign and cross-role credentials.
// Every case must be refused (4xx) or, where marked, be an exact retry the relay answers like the
// original; nothing may change the store. The zod request schemas are the oracle for "invalid".

import { randomBytes } from "node:crypto";
import {
  API,
  type ApiRouteName,
  addInvitesRequest,
  BUCKET_SIZES,
  CONTROL_MESSAGE_BYTES,
  createEpochKey,
  createPhotoRequest,
  enrollRequest,
  envelopeLength,
  generateDeviceKeys,
  generateSigningKeyPair,
  inboxAckRequest,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  MAX_CHUNK_RUN,
  MAX_RECIPIENTS,
  mailboxAckRequest,
  OCTET_STREAM,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  putEpochKeysRequest,
  rosterRequest,
  sessionRequest,
  signAuthStatement,
  toBase64url,
} from "@testigo/protocol";
import fc from "fast-check";
import type { z } from "zod";
import { enrollPayload, makeEnvelope, makeRoster, OPERATOR_TOKEN, START } from "./harness.js";
import { PHOTO_CHUNKS, type World } from "./world.js";

export type Expect =
  /** Must be refused with a documented 4xx. */
  | "rejected"
  /** An exact retry of something already stored: answered 2xx like the original, or refused. */
  | "idempotent"
  /** A public read: 2xx or a documented 4xx. */
  | "read";

export interface FuzzRequest {
  readonly method: "GET" | "POST" | "PUT" | "DELETE" | "PATCH";
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly payload?: string | Buffer;
}

export interface FuzzCase {
  /** What is hostile about it (for failure messages). */
  readonly label: string;
  readonly expect: Expect;
  /** Sent with the relay's clock past the session's lifetime. */
  readonly expired: boolean;
  /** Builds the request; some need the relay first (a fresh challenge). */
  readonly build: (w: World) => Promise<FuzzRequest>;
}

type Role = "coordinator" | "volunteer";

// --- hostile building blocks

const HOSTILE_TEXT = [
  "",
  " ",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "..",
  "%00",
  "\u0000",
  "null",
  "undefined",
  "NaN",
  "-1",
  "1e309",
  "0x10",
  "[]",
  "{}",
  "' OR 1=1 --",
  "\uffff",
  "\ud800",
  "🙂",
  "A".repeat(5_000),
];

export const hostileText = fc.oneof(
  fc.constantFrom(...HOSTILE_TEXT),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }),
);

/** Every UTF-8 byte percent-encoded (encodeURIComponent throws on lone surrogates). */
export function percentEncoded(text: string): string {
  return Array.from(Buffer.from(text, "utf8"), (b) => `%${b.toString(16).padStart(2, "0")}`).join("");
}

const hostileKey = fc.oneof(fc.constantFrom("__proto__", "constructor", "prototype", "toString", ""), hostileText);

/** Base64 that is not what a field wants: wrong lengths, padding, standard alphabet, junk. */
const badBase64 = fc.oneof(
  fc.uint8Array({ maxLength: 80 }).map((b) => toBase64url(b)),
  fc.uint8Array({ minLength: 16, maxLength: 64 }).map((b) => Buffer.from(b).toString("base64")),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `${toBase64url(b)}=`),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toBase64url(b).slice(1)),
  fc.string({ minLength: 1, maxLength: 90 }),
);

const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  hostileText,
  badBase64,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(hostileKey, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

/** A path segment that is not a valid id: junk, traversal, bad escapes, wrong lengths, too long. */
const hostileSegment = fc.oneof(
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "..",
    ".",
    "%2e%2e",
    "%00",
    "%",
    "%E0%A4%A",
    "%2F",
    "a%2Fb",
    "x".repeat(101),
    "x".repeat(3_000),
  ),
  hostileText.map(percentEncoded),
  fc.uint8Array({ maxLength: 40 }).map((b) => toBase64url(b)),
);

const hostileIndex = fc.oneof(
  fc.constantFrom("-1", "01", "00", "512", "513", "9999", "1e2", "0x1", "1.0", "%201", "+1", "NaN", "Infinity"),
  fc.constantFrom("4294967296", "99999999999999999999999"),
  hostileSegment,
);

function fails(schema: z.ZodType, text: string): boolean {
  try {
    return !schema.safeParse(JSON.parse(text)).success;
  } catch {
    return true;
  }
}

interface Body {
  readonly label: string;
  readonly payload: string | Buffer;
  readonly contentType: string;
}

const JSON_TYPE = "application/json";

/** JSON bodies the route's schema refuses, derived from a valid one. */
function badJsonBodies(valid: Record<string, unknown>, schema: z.ZodType): fc.Arbitrary<Body> {
  const text = JSON.stringify(valid);
  const keys = Object.keys(valid);
  const json = (label: string) => (payload: string) => ({ label, payload, contentType: JSON_TYPE });
  return fc.oneof(
    fc.nat({ max: text.length - 1 }).map((n) => json(`truncated JSON at ${n}`)(text.slice(0, n))),
    fc
      .string({ maxLength: 200 })
      .filter((t) => fails(schema, t))
      .map(json("junk text")),
    fc
      .constantFrom(
        `{"__proto__":{"polluted":"yes"}}`,
        `{"constructor":{"prototype":{"polluted":"yes"}}}`,
        `{"__proto__":{"polluted":"yes"},${text.slice(1)}`,
        `${text.slice(0, -1)},"constructor":{"prototype":{"polluted":"yes"}}}`,
        `[${text}]`,
        `${text}${text}`,
        `${text.slice(0, -1)},${text.slice(1)}`,
      )
      .filter((t) => fails(schema, t))
      .map(json("prototype pollution / duplicate keys")),
    hostileJson
      .map((v) => JSON.stringify(v) ?? "null")
      .filter((t) => fails(schema, t))
      .map(json("wrong type")),
    fc
      .tuple(fc.constantFrom(...keys), fc.oneof(hostileJson, badBase64))
      .map(([key, value]) => JSON.stringify({ ...valid, [key]: value }))
      .filter((t) => fails(schema, t))
      .map(json("a field of the wrong type or size")),
    fc
      .tuple(hostileKey, hostileJson)
      .map(([key, value]) => JSON.stringify({ ...valid, [key]: value }))
      .filter((t) => fails(schema, t))
      .map(json("an unknown field")),
    fc
      .constantFrom(...keys)
      .map((key) => JSON.stringify({ ...valid, [key]: undefined }))
      .filter((t) => fails(schema, t))
      .map(json("a missing field")),
    fc
      .constantFrom(...keys)
      .chain((key) =>
        fc
          .constantFrom(100_000, 300_000)
          .map((n) => json(`a ${n}-byte field`)(JSON.stringify({ ...valid, [key]: "A".repeat(n) }))),
      ),
    fc
      .constantFrom(
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/xml",
      )
      .map((contentType) => ({ label: `content type ${contentType}`, payload: text, contentType })),
  );
}

// --- credentials

interface Auth {
  readonly label: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly expired: boolean;
}

function tokenOf(w: World, role: Role, campaign: "a" | "b" = "a"): string {
  if (role === "volunteer") return campaign === "a" ? w.volunteer.token : w.volunteerB.token;
  const device = (campaign === "a" ? w.a : w.b).devices[0];
  if (device === undefined) throw new Error("no device");
  return device.token;
}

function authorization(value: string | undefined): Record<string, string> {
  return value === undefined ? {} : { authorization: value };
}

/** Credentials that must not open a route that needs one of `roles` in campaign A. */
function badAuth(w: World, roles: readonly Role[]): fc.Arbitrary<Auth> {
  const role = roles[0] ?? "coordinator";
  const valid = tokenOf(w, role);
  const auth = (label: string, value: string | undefined, expired = false): Auth => ({
    label,
    headers: authorization(value),
    expired,
  });
  const options: fc.Arbitrary<Auth>[] = [
    fc.constant(auth("no credentials", undefined)),
    hostileText.filter((t) => /^[\x20-\x7e]*$/.test(t)).map((t) => auth("a garbage token", `Bearer ${t}`)),
    fc
      .constantFrom("Basic dXNlcjpwYXNz", `bearer ${valid}`, "Bearer", `Bearer  ${valid}`, valid, `Bearer ${valid} x`)
      .map((v) => auth("a malformed Authorization header", v)),
    fc
      .uint8Array({ minLength: 64, maxLength: 200 })
      .map((b) => toBase64url(b).slice(0, valid.length))
      .map((t) => auth("a forged token", `Bearer ${t}`)),
    fc
      // Not the last character: its unused low bits may not matter to a base64url decoder.
      .tuple(fc.nat({ max: valid.length - 2 }), fc.constantFrom("A", "B", "-", "_", "0"))
      .filter(([i, c]) => valid[i] !== c)
      .map(([i, c]) => auth("a tampered token", `Bearer ${valid.slice(0, i)}${c}${valid.slice(i + 1)}`)),
    fc.constant(auth("an expired session", `Bearer ${valid}`, true)),
    fc.constantFrom(...roles).map((r) => auth(`a ${r} session of another campaign`, `Bearer ${tokenOf(w, r, "b")}`)),
    fc.constant(auth("the operator's token", `Bearer ${OPERATOR_TOKEN}`)),
  ];
  const other: Role = role === "coordinator" ? "volunteer" : "coordinator";
  if (!roles.includes(other)) options.push(fc.constant(auth(`a ${other} session`, `Bearer ${tokenOf(w, other)}`)));
  if (roles.includes("volunteer")) {
    options.push(fc.constant(auth("a revoked volunteer's session", `Bearer ${w.revoked.token}`)));
  }
  return fc.oneof(...options);
}

function validAuth(w: World, role: Role): Auth {
  return { label: "valid credentials", headers: { authorization: `Bearer ${tokenOf(w, role)}` }, expired: false };
}

// --- assembling cases

function fuzzCase(
  label: string,
  expect: Expect,
  expired: boolean,
  build: (w: World) => Promise<FuzzRequest> | FuzzRequest,
): FuzzCase {
  return { label, expect, expired, build: async (w) => build(w) };
}

function request(
  method: FuzzRequest["method"],
  url: string,
  headers: Readonly<Record<string, string>>,
  payload?: string | Buffer,
): FuzzRequest {
  return { method, url, headers, ...(payload === undefined ? {} : { payload }) };
}

/** `path` with its parameters filled (the values are already URL-encoded or deliberately raw). */
function path(pattern: string, params: Readonly<Record<string, string>>): string {
  return pattern.replace(/:([A-Za-z]+)/g, (_, name: string) => params[name] ?? "");
}

const randomId = () => toBase64url(randomBytes(16));
const randomPseudonym = () =>
  `v-${Array.from(randomBytes(16), (b) => "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[b % 32]).join("")}`;

/** A JSON route: bad credentials with a valid body, or valid credentials with a bad body or path. */
function jsonRoute(
  w: World,
  method: FuzzRequest["method"],
  pattern: string,
  params: Readonly<Record<string, string>>,
  roles: readonly Role[],
  valid: () => Record<string, unknown>,
  schema: z.ZodType,
  semantic: readonly fc.Arbitrary<FuzzCase>[] = [],
): fc.Arbitrary<FuzzCase> {
  const url = path(pattern, params);
  const role = roles[0] ?? "coordinator";
  const validBody = valid();
  return fc.oneof(
    badAuth(w, roles).map((auth) =>
      fuzzCase(auth.label, "rejected", auth.expired, () =>
        request(method, url, { ...auth.headers, "content-type": JSON_TYPE }, JSON.stringify(valid())),
      ),
    ),
    badJsonBodies(validBody, schema).map((body) =>
      fuzzCase(body.label, "rejected", false, () =>
        request(method, url, { ...validAuth(w, role).headers, "content-type": body.contentType }, body.payload),
      ),
    ),
    hostileSegment.map((segment) =>
      fuzzCase(`a hostile campaign id ${JSON.stringify(segment.slice(0, 40))}`, "rejected", false, () =>
        request(
          method,
          path(pattern, { ...params, campaignId: segment }),
          { ...validAuth(w, role).headers, "content-type": JSON_TYPE },
          JSON.stringify(valid()),
        ),
      ),
    ),
    ...semantic,
  );
}

/** A route without a body: bad credentials, or valid credentials with a bad path or query. */
function bodylessRoute(
  w: World,
  method: FuzzRequest["method"],
  pattern: string,
  params: Readonly<Record<string, string>>,
  roles: readonly Role[] | undefined,
  hostile: readonly fc.Arbitrary<FuzzCase>[],
): fc.Arbitrary<FuzzCase> {
  const url = path(pattern, params);
  const options = [...hostile];
  if (roles !== undefined) {
    options.push(
      badAuth(w, roles).map((auth) =>
        fuzzCase(auth.label, "rejected", auth.expired, () => request(method, url, auth.headers)),
      ),
    );
  }
  options.push(
    hostileSegment.map((segment) =>
      fuzzCase(`a hostile campaign id ${JSON.stringify(segment.slice(0, 40))}`, "rejected", false, () =>
        request(
          method,
          path(pattern, { ...params, campaignId: segment }),
          roles === undefined ? {} : validAuth(w, roles[0] ?? "coordinator").headers,
        ),
      ),
    ),
  );
  return fc.oneof(...options);
}

interface OctetBody {
  readonly label: string;
  readonly payload: Buffer;
  readonly contentType?: string;
  readonly expect?: Expect;
}

/** An octet-stream route: bad credentials with valid bytes, or valid credentials with bad bytes. */
function octetRoute(
  w: World,
  pattern: string,
  params: Readonly<Record<string, string>>,
  role: Role,
  valid: () => Uint8Array,
  bodies: fc.Arbitrary<OctetBody>,
  paramCases: readonly fc.Arbitrary<FuzzCase>[] = [],
): fc.Arbitrary<FuzzCase> {
  const method = pattern.includes("/chunks/") || pattern.includes("/photos/") ? "PUT" : "POST";
  const url = path(pattern, params);
  const contentTypes = fc.constantFrom(JSON_TYPE, "text/plain", "application/octet-stream; x=1", "image/jpeg");
  return fc.oneof(
    badAuth(w, [role]).map((auth) =>
      fuzzCase(auth.label, "rejected", auth.expired, () =>
        request(method, url, { ...auth.headers, "content-type": OCTET_STREAM }, Buffer.from(valid())),
      ),
    ),
    bodies.map((body) =>
      fuzzCase(body.label, body.expect ?? "rejected", false, () =>
        request(
          method,
          url,
          { ...validAuth(w, role).headers, "content-type": body.contentType ?? OCTET_STREAM },
          body.payload,
        ),
      ),
    ),
    contentTypes.map((contentType) =>
      fuzzCase(`content type ${contentType}`, "rejected", false, () =>
        request(
          method,
          url,
          { ...validAuth(w, role).headers, "content-type": contentType },
          contentType === JSON_TYPE ? JSON.stringify({ bytes: toBase64url(valid()) }) : Buffer.from(valid()),
        ),
      ),
    ),
    hostileSegment.map((segment) =>
      fuzzCase(`a hostile campaign id ${JSON.stringify(segment.slice(0, 40))}`, "rejected", false, () =>
        request(
          method,
          path(pattern, { ...params, campaignId: segment }),
          { ...validAuth(w, role).headers, "content-type": OCTET_STREAM },
          Buffer.from(valid()),
        ),
      ),
    ),
    ...paramCases,
  );
}

const randomBytesOf = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map(Buffer.from);

/** The largest envelope the relay takes; one byte more is 413. */
const MAX_ENVELOPE = envelopeLength(BUCKET_SIZES.length - 1, MAX_RECIPIENTS) ?? 0;

// --- every route

export function routeArbitraries(w: World): Record<ApiRouteName, fc.Arbitrary<FuzzCase>> {
  const operatorToken = OPERATOR_TOKEN;
  const cid = w.a.campaignId;
  const coord = w.a.devices[0];
  if (coord === undefined) throw new Error("no coordinator");
  const vAuth = validAuth(w, "volunteer").headers;
  const cAuth = validAuth(w, "coordinator").headers;
  const photoParams = { campaignId: cid, photoId: w.photoId };

  const sessionBody = (): Record<string, unknown> => ({
    campaignId: cid,
    role: "coordinator",
    principal: coord.id,
    challenge: toBase64url(randomBytes(32)),
    signature: toBase64url(randomBytes(64)),
  });

  const operatorRoute = (): fc.Arbitrary<FuzzCase> => {
    const url = API.registerCampaign.path;
    const newRoster = () => ({
      roster: makeRoster(generateSigningKeyPair(), [{ id: "x", keys: generateDeviceKeys() }]),
    });
    const op = { authorization: `Bearer ${operatorToken}` };
    return fc.oneof(
      fc
        .constantFrom<[string, string | undefined]>(
          ["no credentials", undefined],
          ["a wrong operator token", `Bearer ${operatorToken.slice(0, -1)}x`],
          ["a shorter operator token", `Bearer ${operatorToken.slice(0, -1)}`],
          ["a coordinator session", `Bearer ${tokenOf(w, "coordinator")}`],
          ["the token without a scheme", operatorToken],
          ["an empty bearer", "Bearer "],
        )
        .map(([label, value]) =>
          fuzzCase(label, "rejected", false, () =>
            request("POST", url, { ...authorization(value), "content-type": JSON_TYPE }, JSON.stringify(newRoster())),
          ),
        ),
      badJsonBodies(newRoster(), rosterRequest).map((body) =>
        fuzzCase(body.label, "rejected", false, () =>
          request("POST", url, { ...op, "content-type": body.contentType }, body.payload),
        ),
      ),
      fc.constant(
        fuzzCase("an already registered campaign", "rejected", false, () =>
          request("POST", url, { ...op, "content-type": JSON_TYPE }, JSON.stringify({ roster: w.a.rosterDoc })),
        ),
      ),
      fc.uint8Array({ minLength: 64, maxLength: 64 }).map((sig) =>
        fuzzCase("a roster with a wrong signature", "rejected", false, () => {
          const roster = newRoster().roster;
          return request(
            "POST",
            url,
            { ...op, "content-type": JSON_TYPE },
            JSON.stringify({ roster: { ...roster, signature: toBase64url(sig) } }),
          );
        }),
      ),
      fc
        .uint8Array({ minLength: 1, maxLength: 2_000 })
        .map((payload) =>
          fuzzCase("a roster of random bytes", "rejected", false, () =>
            request(
              "POST",
              url,
              { ...op, "content-type": JSON_TYPE },
              JSON.stringify({ roster: { payload: toBase64url(payload), signature: toBase64url(randomBytes(64)) } }),
            ),
          ),
        ),
    );
  };

  const arbitraries: Record<ApiRouteName, fc.Arbitrary<FuzzCase>> = {
    // The challenge route takes no body and ignores a well-formed one: only bodies fastify must refuse.
    challenge: fc
      .oneof(
        fc
          .string({ maxLength: 200 })
          .filter(notJson)
          .map((text) => ({ label: "junk text", text, type: JSON_TYPE })),
        fc
          .integer({ min: 1, max: 20 })
          .map((n) => ({ label: "truncated JSON", text: '{"a":[1,2,{"b":"c"}]}'.slice(0, n), type: JSON_TYPE })),
        fc
          .constantFrom(
            `{"__proto__":{"polluted":"yes"}}`,
            `{"a":{"__proto__":{"polluted":"yes"}}}`,
            `{"constructor":{"prototype":{"polluted":"yes"}}}`,
            `[{"constructor":{"prototype":{"polluted":"yes"}}}]`,
          )
          .map((text) => ({ label: "prototype pollution", text, type: JSON_TYPE })),
        fc.constant({ label: "a 300 KB body", text: JSON.stringify({ a: "A".repeat(300_000) }), type: JSON_TYPE }),
        fc
          .constantFrom("application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml")
          .map((type) => ({ label: `content type ${type}`, text: "a=1", type })),
      )
      .map(({ label, text, type }) =>
        fuzzCase(label, "rejected", false, () => request("POST", API.challenge.path, { "content-type": type }, text)),
      ),

    session: fc.oneof(
      badJsonBodies(sessionBody(), sessionRequest).map((body) =>
        fuzzCase(body.label, "rejected", false, () =>
          request("POST", API.session.path, { "content-type": body.contentType }, body.payload),
        ),
      ),
      fc.constant(
        fuzzCase("an unknown challenge", "rejected", false, () =>
          request("POST", API.session.path, { "content-type": JSON_TYPE }, JSON.stringify(sessionBody())),
        ),
      ),
      fc.constant(
        fuzzCase("a replayed session request (its challenge is burned)", "rejected", false, () =>
          request("POST", API.session.path, { "content-type": JSON_TYPE }, JSON.stringify(w.usedSessionBody)),
        ),
      ),
      fc
        .constantFrom(
          "a wrong signature",
          "an unknown principal",
          "a volunteer's key as a coordinator",
          "another campaign",
          "a revoked volunteer",
        )
        .map((label) =>
          fuzzCase(`a fresh challenge with ${label}`, "rejected", false, async (world) => {
            const ch = await world.relay.app.inject({ method: "POST", url: API.challenge.path });
            const challenge = (ch.json() as { challenge: string }).challenge;
            let statement = {
              campaignId: cid,
              role: "coordinator" as Role,
              principal: coord.id,
              challenge,
            };
            let key = coord.keys.signing.privateKey;
            if (label === "a wrong signature") key = generateSigningKeyPair().privateKey;
            if (label === "an unknown principal") statement = { ...statement, principal: "laptop-99" };
            if (label === "a volunteer's key as a coordinator") key = world.volunteer.keys.signing.privateKey;
            if (label === "another campaign") statement = { ...statement, campaignId: world.b.campaignId };
            if (label === "a revoked volunteer") {
              statement = { ...statement, role: "volunteer", principal: world.revoked.pseudonym };
              key = world.revoked.keys.signing.privateKey;
            }
            const body = { ...statement, signature: signAuthStatement(statement, key) };
            return request("POST", API.session.path, { "content-type": JSON_TYPE }, JSON.stringify(body));
          }),
        ),
    ),

    registerCampaign: operatorRoute(),

    getRoster: bodylessRoute(w, "GET", API.getRoster.path, { campaignId: cid }, undefined, [
      fc.constant(
        fuzzCase("an unknown campaign", "rejected", false, () =>
          request("GET", path(API.getRoster.path, { campaignId: randomId() }), {}),
        ),
      ),
    ]),

    putRoster: jsonRoute(
      w,
      "PUT",
      API.putRoster.path,
      { campaignId: cid },
      ["coordinator"],
      () => ({ roster: makeRoster(w.a.root, w.a.devices, 2) }),
      rosterRequest,
      [
        fc
          .constantFrom("the current roster again (stale)", "another campaign's roster", "a roster of another root")
          .map((label) =>
            fuzzCase(label, "rejected", false, () => {
              const roster =
                label === "another campaign's roster"
                  ? makeRoster(w.b.root, w.b.devices, 5)
                  : label === "a roster of another root"
                    ? makeRoster(generateSigningKeyPair(), w.a.devices, 5)
                    : w.a.rosterDoc;
              return request(
                "PUT",
                path(API.putRoster.path, { campaignId: cid }),
                { ...cAuth, "content-type": JSON_TYPE },
                JSON.stringify({ roster }),
              );
            }),
          ),
        fc
          .uint8Array({ minLength: 64, maxLength: 64 })
          .map((sig) =>
            fuzzCase("a newer roster with a wrong signature", "rejected", false, () =>
              request(
                "PUT",
                path(API.putRoster.path, { campaignId: cid }),
                { ...cAuth, "content-type": JSON_TYPE },
                JSON.stringify({ roster: { ...makeRoster(w.a.root, w.a.devices, 3), signature: toBase64url(sig) } }),
              ),
            ),
          ),
      ],
    ),

    getEpochKeys: bodylessRoute(w, "GET", API.getEpochKeys.path, { campaignId: cid }, undefined, [
      fc.constant(
        fuzzCase("an unknown campaign", "rejected", false, () =>
          request("GET", path(API.getEpochKeys.path, { campaignId: randomId() }), {}),
        ),
      ),
    ]),

    putEpochKeys: jsonRoute(
      w,
      "PUT",
      API.putEpochKeys.path,
      { campaignId: cid },
      ["coordinator"],
      () => ({
        documents: [
          createEpochKey({
            campaignId: cid,
            deviceId: coord.id,
            epoch: 1,
            deviceSigningKey: coord.keys.signing.privateKey,
          }).signed,
        ],
      }),
      putEpochKeysRequest,
      [
        fc
          .constantFrom("signed by another key", "of another device", "of another campaign", "random bytes")
          .map((label) =>
            fuzzCase(`an epoch-key document ${label}`, "rejected", false, () => {
              const other = w.a.devices[1] ?? coord;
              const doc =
                label === "random bytes"
                  ? { payload: toBase64url(randomBytes(200)), signature: toBase64url(randomBytes(64)) }
                  : createEpochKey({
                      campaignId: label === "of another campaign" ? w.b.campaignId : cid,
                      deviceId: label === "of another device" ? other.id : coord.id,
                      epoch: 1,
                      deviceSigningKey:
                        label === "signed by another key"
                          ? generateSigningKeyPair().privateKey
                          : label === "of another device"
                            ? other.keys.signing.privateKey
                            : coord.keys.signing.privateKey,
                    }).signed;
              return request(
                "PUT",
                path(API.putEpochKeys.path, { campaignId: cid }),
                { ...cAuth, "content-type": JSON_TYPE },
                JSON.stringify({ documents: [doc] }),
              );
            }),
          ),
      ],
    ),

    addInvites: jsonRoute(
      w,
      "POST",
      API.addInvites.path,
      { campaignId: cid },
      ["coordinator"],
      () => ({
        invites: [
          { storedHash: inviteStoredHashBase64url(inviteRedeemToken(randomBytes(16))), expiresAt: START + 3_600_000 },
        ],
      }),
      addInvitesRequest,
      [
        fc
          .oneof(fc.integer({ min: 0, max: START }), fc.integer({ min: START + 367 * 86_400_000, max: 8.64e15 }))
          .map((expiresAt) =>
            fuzzCase(`an invite expiring at ${expiresAt}`, "rejected", false, () =>
              request(
                "POST",
                path(API.addInvites.path, { campaignId: cid }),
                { ...cAuth, "content-type": JSON_TYPE },
                JSON.stringify({ invites: [{ storedHash: toBase64url(randomBytes(32)), expiresAt }] }),
              ),
            ),
          ),
      ],
    ),

    enroll: fc.oneof(
      badJsonBodies(enrollPayload(inviteRedeemToken(randomBytes(16)), generateDeviceKeys()), enrollRequest).map(
        (body) =>
          fuzzCase(body.label, "rejected", false, () =>
            request(
              "POST",
              path(API.enroll.path, { campaignId: cid }),
              { "content-type": body.contentType },
              body.payload,
            ),
          ),
      ),
      fc
        .constantFrom("an unknown invite", "a wrong signature", "an unknown campaign", "enrolled keys, unknown invite")
        .map((label) =>
          // Enrolled keys with an invite the relay does not know are answered as a retry of their
          // enrollment (a lost answer): the same pseudonym, nothing written (server/src/routes/invites.ts).
          fuzzCase(label, label === "enrolled keys, unknown invite" ? "idempotent" : "rejected", false, () => {
            const keys = label === "enrolled keys, unknown invite" ? w.volunteer.keys : generateDeviceKeys();
            const body = enrollPayload(inviteRedeemToken(randomBytes(16)), keys);
            const sent = label === "a wrong signature" ? { ...body, signature: toBase64url(randomBytes(64)) } : body;
            const campaignId = label === "an unknown campaign" ? randomId() : cid;
            return request(
              "POST",
              path(API.enroll.path, { campaignId }),
              { "content-type": JSON_TYPE },
              JSON.stringify(sent),
            );
          }),
        ),
      hostileSegment.map((segment) =>
        fuzzCase("a hostile campaign id", "rejected", false, () =>
          request(
            "POST",
            path(API.enroll.path, { campaignId: segment }),
            { "content-type": JSON_TYPE },
            JSON.stringify(enrollPayload(inviteRedeemToken(randomBytes(16)), generateDeviceKeys())),
          ),
        ),
      ),
    ),

    submitEnvelope: octetRoute(
      w,
      API.submitEnvelope.path,
      { campaignId: cid },
      "volunteer",
      () => makeEnvelope(cid).bytes,
      fc.oneof(
        randomBytesOf(0, 3_000).map((payload) => ({ label: "random bytes", payload })),
        fc.nat().map((n) => {
          const bytes = makeEnvelope(cid).bytes;
          return { label: "a truncated envelope", payload: Buffer.from(bytes.subarray(0, n % bytes.length)) };
        }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => ({
          label: "an envelope with trailing bytes",
          payload: Buffer.concat([makeEnvelope(cid).bytes, extra]),
        })),
        fc
          .integer({ min: 0, max: 255 })
          .filter((v) => v !== 1)
          .map((version) => {
            const bytes = Buffer.from(makeEnvelope(cid).bytes);
            bytes[0] = version;
            return { label: `envelope version ${version}`, payload: bytes };
          }),
        fc.tuple(fc.integer({ min: 33, max: 34 }), fc.integer({ min: 0, max: 255 })).map(([offset, value]) => {
          const bytes = Buffer.from(makeEnvelope(cid).bytes);
          if (bytes[offset] === value) bytes[offset] = (value + 1) % 256;
          else bytes[offset] = value;
          return { label: `an envelope whose byte ${offset} says ${bytes[offset]}`, payload: bytes };
        }),
        fc.constant(0).map(() => ({
          label: "an envelope of another campaign",
          payload: Buffer.from(makeEnvelope(w.b.campaignId).bytes),
        })),
        fc.constant(0).map(() => ({
          label: "another envelope under an accepted message id (conflict)",
          payload: Buffer.from(makeEnvelope(cid, w.envelope.messageId).bytes),
        })),
        fc.constant(0).map(() => ({
          label: "a replayed envelope",
          payload: Buffer.from(w.envelope.bytes),
          expect: "idempotent" as const,
        })),
        fc
          .constant(0)
          .map(() => ({ label: "an envelope over the size limit", payload: Buffer.alloc(MAX_ENVELOPE + 1) })),
      ),
    ),

    createPhoto: jsonRoute(
      w,
      "PUT",
      API.createPhoto.path,
      photoParams,
      ["volunteer"],
      () => ({ chunkCount: 2 }),
      createPhotoRequest,
      [
        fc
          .integer({ min: 1, max: 512 })
          .filter((n) => n !== PHOTO_CHUNKS)
          .map((n) =>
            fuzzCase(`a declared photo with another chunk count ${n}`, "rejected", false, () =>
              request(
                "PUT",
                path(API.createPhoto.path, photoParams),
                { ...vAuth, "content-type": JSON_TYPE },
                `{"chunkCount":${n}}`,
              ),
            ),
          ),
        fc.constant(
          fuzzCase("a declared photo again", "idempotent", false, () =>
            request(
              "PUT",
              path(API.createPhoto.path, photoParams),
              { ...vAuth, "content-type": JSON_TYPE },
              JSON.stringify({ chunkCount: PHOTO_CHUNKS }),
            ),
          ),
        ),
        hostileSegment.map((photoId) =>
          fuzzCase("a hostile photo id", "rejected", false, () =>
            request(
              "PUT",
              path(API.createPhoto.path, { campaignId: cid, photoId }),
              { ...vAuth, "content-type": JSON_TYPE },
              `{"chunkCount":2}`,
            ),
          ),
        ),
      ],
    ),

    listChunks: bodylessRoute(
      w,
      "GET",
      API.listChunks.path,
      photoParams,
      ["volunteer", "coordinator"],
      [
        hostileSegment.map((photoId) =>
          fuzzCase("a hostile photo id", "rejected", false, () =>
            request("GET", path(API.listChunks.path, { campaignId: cid, photoId }), vAuth),
          ),
        ),
        fc.constant(
          fuzzCase("an unknown photo", "rejected", false, () =>
            request("GET", path(API.listChunks.path, { campaignId: cid, photoId: randomId() }), vAuth),
          ),
        ),
      ],
    ),

    putChunk: octetRoute(
      w,
      API.putChunk.path,
      { ...photoParams, index: "1" },
      "volunteer",
      () => randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES),
      fc.oneof(
        fc.nat({ max: PHOTO_CHUNK_CIPHERTEXT_BYTES - 1 }).map((n) => ({
          label: `a truncated chunk of ${n} bytes`,
          payload: Buffer.from(randomBytes(n)),
        })),
        fc.integer({ min: 1, max: 5_000 }).map((n) => ({
          label: `a chunk ${n} bytes too long`,
          payload: Buffer.from(randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES + n)),
        })),
      ),
      [
        fc
          .integer({ min: PHOTO_CHUNKS, max: 511 })
          .map((index) =>
            fuzzCase(`a chunk index ${index} past the photo's count`, "rejected", false, () =>
              request(
                "PUT",
                path(API.putChunk.path, { ...photoParams, index: String(index) }),
                { ...vAuth, "content-type": OCTET_STREAM },
                Buffer.from(randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES)),
              ),
            ),
          ),
        hostileIndex.map((index) =>
          fuzzCase(`a hostile chunk index ${JSON.stringify(index.slice(0, 40))}`, "rejected", false, () =>
            request(
              "PUT",
              path(API.putChunk.path, { ...photoParams, index }),
              { ...vAuth, "content-type": OCTET_STREAM },
              Buffer.from(randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES)),
            ),
          ),
        ),
        fc.constantFrom("other bytes for a stored chunk (conflict)", "a chunk of an undeclared photo").map((label) =>
          fuzzCase(label, "rejected", false, () =>
            request(
              "PUT",
              path(API.putChunk.path, {
                campaignId: cid,
                photoId: label.includes("undeclared") ? randomId() : w.photoId,
                index: "0",
              }),
              { ...vAuth, "content-type": OCTET_STREAM },
              Buffer.from(randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES)),
            ),
          ),
        ),
        fc.constant(
          fuzzCase("a stored chunk again", "idempotent", false, () =>
            request(
              "PUT",
              path(API.putChunk.path, { ...photoParams, index: "0" }),
              { ...vAuth, "content-type": OCTET_STREAM },
              Buffer.from(w.chunk0),
            ),
          ),
        ),
      ],
    ),

    putChunkRun: octetRoute(
      w,
      API.putChunkRun.path,
      { ...photoParams, first: "1" },
      "volunteer",
      () => randomBytes(2 * PHOTO_CHUNK_CIPHERTEXT_BYTES),
      fc.oneof(
        fc
          .integer({ min: 0, max: 2 * PHOTO_CHUNK_CIPHERTEXT_BYTES + 5_000 })
          .filter((n) => n % PHOTO_CHUNK_CIPHERTEXT_BYTES !== 0 || n === 0)
          .map((n) => ({ label: `a chunk run of ${n} bytes`, payload: Buffer.from(randomBytes(n)) })),
        fc.constant({
          label: `a chunk run of ${MAX_CHUNK_RUN + 1} chunks`,
          payload: Buffer.from(randomBytes((MAX_CHUNK_RUN + 1) * PHOTO_CHUNK_CIPHERTEXT_BYTES)),
        }),
      ),
      [
        fc
          .integer({ min: 1, max: 3 })
          .map((count) =>
            fuzzCase(`a chunk run of ${count} reaching past the photo's count`, "rejected", false, () =>
              request(
                "PUT",
                path(API.putChunkRun.path, { ...photoParams, first: String(PHOTO_CHUNKS + 1 - count) }),
                { ...vAuth, "content-type": OCTET_STREAM },
                Buffer.from(randomBytes(count * PHOTO_CHUNK_CIPHERTEXT_BYTES)),
              ),
            ),
          ),
        hostileIndex.map((first) =>
          fuzzCase(`a hostile first chunk index ${JSON.stringify(first.slice(0, 40))}`, "rejected", false, () =>
            request(
              "PUT",
              path(API.putChunkRun.path, { ...photoParams, first }),
              { ...vAuth, "content-type": OCTET_STREAM },
              Buffer.from(randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES)),
            ),
          ),
        ),
        fc
          .constantFrom(
            "a chunk run with other bytes for a stored chunk (conflict)",
            "a chunk run of an undeclared photo",
          )
          .map((label) =>
            fuzzCase(label, "rejected", false, () =>
              request(
                "PUT",
                path(API.putChunkRun.path, {
                  campaignId: cid,
                  photoId: label.includes("undeclared") ? randomId() : w.photoId,
                  first: "0",
                }),
                { ...vAuth, "content-type": OCTET_STREAM },
                Buffer.from(randomBytes(2 * PHOTO_CHUNK_CIPHERTEXT_BYTES)),
              ),
            ),
          ),
        fc.constant(
          fuzzCase("a stored chunk again, as a run of one", "idempotent", false, () =>
            request(
              "PUT",
              path(API.putChunkRun.path, { ...photoParams, first: "0" }),
              { ...vAuth, "content-type": OCTET_STREAM },
              Buffer.from(w.chunk0),
            ),
          ),
        ),
      ],
    ),

    getChunk: bodylessRoute(
      w,
      "GET",
      API.getChunk.path,
      { ...photoParams, index: "0" },
      ["coordinator"],
      [
        fc.constant(
          fuzzCase("a chunk of an incomplete photo", "rejected", false, () =>
            request("GET", path(API.getChunk.path, { ...photoParams, index: "0" }), cAuth),
          ),
        ),
        hostileIndex.map((index) =>
          fuzzCase("a hostile chunk index", "rejected", false, () =>
            request("GET", path(API.getChunk.path, { ...photoParams, index }), cAuth),
          ),
        ),
        hostileSegment.map((photoId) =>
          fuzzCase("a hostile photo id", "rejected", false, () =>
            request("GET", path(API.getChunk.path, { campaignId: cid, photoId, index: "0" }), cAuth),
          ),
        ),
      ],
    ),

    readInbox: bodylessRoute(
      w,
      "GET",
      API.readInbox.path,
      { campaignId: cid },
      ["coordinator"],
      [
        fc
          .oneof(
            fc.constantFrom(
              "limit=0",
              "limit=501",
              "limit=-1",
              "limit=1.5",
              "limit=abc",
              "limit=1&limit=2",
              "after=%00",
              "after=a%20b",
              `after=${"x".repeat(129)}`,
              "nope=1",
              "__proto__[polluted]=1",
              "constructor[prototype][polluted]=1",
              "__proto__=1",
            ),
            fc.tuple(hostileKey, hostileText).map(([k, v]) => `${percentEncoded(k)}=${percentEncoded(v)}`),
            fc.tuple(fc.constantFrom("limit", "after"), hostileText).map(([k, v]) => `${k}=${percentEncoded(v)}`),
          )
          .filter((query) => !isValidInboxQuery(query))
          .map((query) =>
            fuzzCase(`the query ${JSON.stringify(query.slice(0, 60))}`, "rejected", false, () =>
              request("GET", `${path(API.readInbox.path, { campaignId: cid })}?${query}`, cAuth),
            ),
          ),
      ],
    ),

    ackInbox: jsonRoute(
      w,
      "POST",
      API.ackInbox.path,
      { campaignId: cid },
      ["coordinator"],
      () => ({ cursors: ["999999999999-0"] }),
      inboxAckRequest,
      [
        fc
          .array(fc.stringMatching(/^[A-Za-z0-9_:.-]{1,40}$/), { minLength: 1, maxLength: 20 })
          .map((cursors) =>
            fuzzCase("acks of unknown cursors", "idempotent", false, () =>
              request(
                "POST",
                path(API.ackInbox.path, { campaignId: cid }),
                { ...cAuth, "content-type": JSON_TYPE },
                JSON.stringify({ cursors: cursors.map((c) => `zz${c}`) }),
              ),
            ),
          ),
      ],
    ),

    putMailbox: octetRoute(
      w,
      API.putMailbox.path,
      { campaignId: cid, pseudonym: w.volunteer.pseudonym },
      "coordinator",
      () => randomBytes(CONTROL_MESSAGE_BYTES),
      fc.oneof(
        fc.nat({ max: CONTROL_MESSAGE_BYTES - 1 }).map((n) => ({
          label: `a control message of ${n} bytes`,
          payload: Buffer.from(randomBytes(n)),
        })),
        fc.integer({ min: 1, max: 100_000 }).map((n) => ({
          label: `a control message ${n} bytes too long`,
          payload: Buffer.from(randomBytes(CONTROL_MESSAGE_BYTES + n)),
        })),
        fc.constant(0).map(() => ({
          label: "a stored control message again",
          payload: Buffer.from(w.control),
          expect: "idempotent" as const,
        })),
      ),
      [
        fc
          .oneof(
            fc.constantFrom(w.revoked.pseudonym, w.volunteerB.pseudonym, "v-0000000000000000"),
            fc.constant(0).map(randomPseudonym),
            hostileSegment,
          )
          .map((pseudonym) =>
            fuzzCase(`a control message to ${JSON.stringify(pseudonym.slice(0, 40))}`, "rejected", false, () =>
              request(
                "POST",
                path(API.putMailbox.path, { campaignId: cid, pseudonym }),
                { ...cAuth, "content-type": OCTET_STREAM },
                Buffer.from(randomBytes(CONTROL_MESSAGE_BYTES)),
              ),
            ),
          ),
      ],
    ),

    readMailbox: bodylessRoute(w, "GET", API.readMailbox.path, { campaignId: cid }, ["volunteer"], []),

    ackMailbox: jsonRoute(
      w,
      "POST",
      API.ackMailbox.path,
      { campaignId: cid },
      ["volunteer"],
      () => ({ messageIds: [toBase64url(randomBytes(16))] }),
      mailboxAckRequest,
      [
        fc
          .integer({ min: 1, max: 4 })
          .map((n) =>
            fuzzCase("acks of unknown message ids", "idempotent", false, () =>
              request(
                "POST",
                path(API.ackMailbox.path, { campaignId: cid }),
                { ...vAuth, "content-type": JSON_TYPE },
                JSON.stringify({ messageIds: Array.from({ length: n }, randomId) }),
              ),
            ),
          ),
      ],
    ),

    listVolunteers: bodylessRoute(w, "GET", API.listVolunteers.path, { campaignId: cid }, ["coordinator"], []),

    revokeVolunteer: bodylessRoute(
      w,
      "POST",
      API.revokeVolunteer.path,
      { campaignId: cid, pseudonym: w.volunteer.pseudonym },
      ["coordinator"],
      [
        fc
          .oneof(
            fc.constantFrom(w.volunteerB.pseudonym, "v-0000000000000000"),
            fc.constant(0).map(randomPseudonym),
            hostileSegment,
          )
          .map((pseudonym) =>
            fuzzCase(`revoking ${JSON.stringify(pseudonym.slice(0, 40))}`, "rejected", false, () =>
              request("POST", path(API.revokeVolunteer.path, { campaignId: cid, pseudonym }), cAuth),
            ),
          ),
        fc.constant(
          fuzzCase("revoking a revoked volunteer again", "idempotent", false, () =>
            request("POST", path(API.revokeVolunteer.path, { campaignId: cid, pseudonym: w.revoked.pseudonym }), cAuth),
          ),
        ),
      ],
    ),

    healthz: publicRead(API.healthz.path),
    readyz: publicRead(API.readyz.path),
    metrics: publicRead(API.metrics.path),
  };
  return arbitraries;
}

/** A client address a proxy would forward: the relay must neither trust nor log it (routes-fuzz checks). */
export const FORWARDED_FOR = "203.0.113.7";

/** A public GET with junk queries, headers and bodies: it answers 2xx or a 4xx, and stores nothing. */
function publicRead(url: string): fc.Arbitrary<FuzzCase> {
  return fc
    .tuple(hostileKey, hostileText, fc.constantFrom<FuzzRequest["method"]>("GET", "POST", "PUT", "DELETE", "PATCH"))
    .map(([key, value, method]) =>
      fuzzCase(`${method} with a junk query`, method === "GET" ? "read" : "rejected", false, () =>
        request(method, `${url}?${percentEncoded(key)}=${percentEncoded(value)}`, {
          "x-forwarded-for": FORWARDED_FOR,
          "x-http-method-override": "DELETE",
        }),
      ),
    );
}

function notJson(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch {
    return true;
  }
}

function isValidInboxQuery(query: string): boolean {
  const params = new URLSearchParams(query);
  const keys = [...params.keys()];
  if (keys.some((k) => k !== "limit" && k !== "after")) return false;
  if (new Set(keys).size !== keys.length) return false;
  const limit = params.get("limit");
  const after = params.get("after");
  if (limit !== null && !(/^[1-9][0-9]{0,3}$/.test(limit) && Number(limit) <= 500)) return false;
  if (after !== null && !/^[A-Za-z0-9_:.-]{1,128}$/.test(after)) return false;
  return true;
}
