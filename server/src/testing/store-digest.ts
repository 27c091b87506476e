// Test harness: a digest of everything a relay's store holds, read from the backend itself (not
// through the Store interface), so a test can prove that a rejected request changed NOTHING.
//
//   SQLite: a second, read-only connection to the database file reads every table (including
//           sqlite_sequence), rows sorted, values type-tagged (blobs as bytes).
//   Redis:  SCAN of every key on every node given (for a cluster, pass every master), dumped by
//           type: strings, hashes, sets and sorted sets sorted, lists and streams in order.
//
// Left out, because they legitimately change without anything being stored:
//   - Redis key TTLs: only whether a key has one is digested, never the time left.
//   - Redis stream consumer-group delivery state (last-delivered id, pending entries, delivery
//     counts, consumers, lag): XREADGROUP changes it on every inbox READ. The group names are
//     digested; acks are still visible, since acked entries are deleted with their payloads.
// Sections that change on requests that store nothing, which a caller may leave out with `include`:
//   - "rateLimits": token buckets; every authenticated request takes a token, even a refused one.
//   - "challenges": one-time auth challenges; a session attempt burns its challenge, right or wrong.
//   - "sessions": session records (if the relay keeps any).
//   - "sequences": SQLite's AUTOINCREMENT high-water marks (sqlite_sequence). SQLite advances one
//     when an INSERT ... ON CONFLICT DO NOTHING is ignored, so an idempotent retry moves it
//     although no row is stored; a refused request must still leave it alone.
import { createHash } from "node:crypto";

/** SQLite: the database file (<dataDir>/relay.sqlite). Redis: every node to scan (each master of a cluster). */
export type StoreTarget =
  | { readonly kind: "sqlite"; readonly file: string }
  | { readonly kind: "redis"; readonly urls: readonly string[] };

export type DigestSection = "data" | "challenges" | "sessions" | "rateLimits" | "sequences";

export const DIGEST_SECTIONS: readonly DigestSection[] = ["challenges", "data", "rateLimits", "sequences", "sessions"];

export interface StoreDigest {
  /** SHA-256 (hex) over every included part, in name order. */
  readonly digest: string;
  /** SHA-256 (hex) of each included part (an SQLite table, a Redis key) by name. */
  readonly parts: ReadonlyMap<string, string>;
}

export interface StoreDigestOptions {
  /** Sections to digest; all of them by default. */
  readonly include?: readonly DigestSection[];
}

const REDIS_TAGS: Readonly<Record<string, DigestSection>> = { rl: "rateLimits", ch: "challenges", s: "sessions" };

/** The section an SQLite table or a Redis key belongs to. */
export function sectionOf(name: string): DigestSection {
  // Redis: the hash tag of the global keys ("{rl:...}"); SQLite: the table's name.
  const redisTag = /^redis:[^{]*\{(rl|ch|s):/.exec(name)?.[1];
  if (redisTag !== undefined) return REDIS_TAGS[redisTag] ?? "data";
  if (!name.startsWith("sqlite:")) return "data";
  if (name === "sqlite:sqlite_sequence") return "sequences";
  if (/rate/.test(name)) return "rateLimits";
  if (/challenge/.test(name)) return "challenges";
  if (/session/.test(name)) return "sessions";
  return "data";
}

export async function storeDigest(target: StoreTarget, options: StoreDigestOptions = {}): Promise<StoreDigest> {
  const include = new Set(options.include ?? DIGEST_SECTIONS);
  const dumps = target.kind === "sqlite" ? await dumpSqlite(target.file) : await dumpRedis(target.urls);
  const parts = new Map<string, string>();
  for (const [name, dump] of [...dumps].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (include.has(sectionOf(name))) parts.set(name, sha256Hex(dump));
  }
  const all = createHash("sha256");
  for (const [name, hash] of parts) all.update(`${name}\u0000${hash}\n`);
  return { digest: all.digest("hex"), parts };
}

/** Names of the parts added, removed or changed between two digests (for assertion messages). */
export function digestChanges(before: StoreDigest, after: StoreDigest): string[] {
  const names = new Set([...before.parts.keys(), ...after.parts.keys()]);
  return [...names].filter((name) => before.parts.get(name) !== after.parts.get(name)).sort();
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A canonical, type-tagged text of any value a backend returns (bytes as hex, maps sorted). */
function canonical(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `b:${Buffer.from(value).toString("hex")}`;
  if (typeof value === "number" || typeof value === "bigint") return `n:${String(value)}`;
  if (typeof value === "string") return `s:${JSON.stringify(value)}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value instanceof Map) return canonicalPairs([...value.entries()]);
  if (typeof value === "object") return canonicalPairs(Object.entries(value));
  return `?:${String(value)}`;
}

function canonicalPairs(pairs: readonly (readonly [unknown, unknown])[]): string {
  const texts = pairs.map(([k, v]) => `${canonical(k)}=${canonical(v)}`).sort();
  return `{${texts.join(",")}}`;
}

// --- SQLite

async function dumpSqlite(file: string): Promise<Map<string, string>> {
  const { default: Database } = await import("better-sqlite3");
  // Read-only: WAL lets this connection read the last committed state next to the relay's.
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_stat%' ORDER BY name")
      .all() as { name: string }[];
    const out = new Map<string, string>();
    for (const { name } of tables) {
      const rows = db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`).all() as Record<string, unknown>[];
      out.set(`sqlite:${name}`, rows.map(canonical).sort().join("\n"));
    }
    return out;
  } finally {
    db.close();
  }
}

// --- Redis

type Reply = Buffer | number | null | Reply[] | { [field: string]: Reply };

async function dumpRedis(urls: readonly string[]): Promise<Map<string, string>> {
  const { createClient, RESP_TYPES } = await import("redis");
  const typeMapping = { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer };
  const out = new Map<string, string>();
  for (const url of urls) {
    const client = createClient({ url });
    client.on("error", () => {});
    await client.connect();
    try {
      const call = (args: readonly (string | Buffer)[]) =>
        client.sendCommand([...args], { typeMapping }) as Promise<Reply>;
      let cursor = "0";
      do {
        const reply = (await call(["SCAN", cursor, "COUNT", "1000"])) as [Buffer, Buffer[]];
        cursor = reply[0].toString();
        for (const key of reply[1]) {
          out.set(`redis:${key.toString("latin1")}`, await dumpKey(call, key));
        }
      } while (cursor !== "0");
    } finally {
      client.destroy();
    }
  }
  return out;
}

async function dumpKey(call: (args: readonly (string | Buffer)[]) => Promise<Reply>, key: Buffer): Promise<string> {
  const type = String(await call(["TYPE", key]));
  const hasTtl = Number(await call(["PTTL", key])) >= 0;
  const head = `${type} ttl:${hasTtl}`;
  switch (type) {
    case "string":
      return `${head} ${canonical(await call(["GET", key]))}`;
    case "hash":
      return `${head} ${canonicalPairs(flatPairs(await call(["HGETALL", key])))}`;
    case "set":
      return `${head} ${sortedList(await call(["SMEMBERS", key]))}`;
    case "zset":
      return `${head} ${canonicalPairs(flatPairs(await call(["ZRANGE", key, "0", "-1", "WITHSCORES"])))}`;
    case "list":
      return `${head} ${canonical(await call(["LRANGE", key, "0", "-1"]))}`;
    case "stream": {
      const entries = canonical(await call(["XRANGE", key, "-", "+"]));
      return `${head} ${entries} groups:${sortedList(groupNames(await call(["XINFO", "GROUPS", key])))}`;
    }
    default:
      return `${head} (not dumped)`;
  }
}

/** Field/value pairs of a flat array reply, or of a reply node-redis turned into a map or object. */
function flatPairs(reply: Reply): [unknown, unknown][] {
  if (reply instanceof Map) return [...reply.entries()];
  if (!Array.isArray(reply)) return reply !== null && typeof reply === "object" ? Object.entries(reply) : [];
  const pairs: [unknown, unknown][] = [];
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([reply[i], reply[i + 1]]);
  return pairs;
}

function sortedList(reply: unknown): string {
  return Array.isArray(reply) ? `[${reply.map(canonical).sort().join(",")}]` : canonical(reply);
}

/** Group names from XINFO GROUPS (a list of flat field/value lists, or of maps). */
function groupNames(reply: Reply): Reply[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((group) => {
    const fields = flatPairs(group);
    const name = fields.find(([field]) => String(field) === "name");
    return (name?.[1] ?? null) as Reply;
  });
}
