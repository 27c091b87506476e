// Opens the configured storage backend: embedded SQLite in the data folder, Redis, or Redis Cluster.
import { resolve } from "node:path";
import type { RelayConfig } from "./config/config.js";
import { SqliteStore } from "./store/sqlite-store.js";
import type { Store } from "./store/store.js";

interface RedisStoreModule {
  readonly RedisStore: {
    connect(url: string): Promise<Store>;
    cluster(urls: readonly string[]): Promise<Store>;
  };
}

/** Loaded only when configured, so the embedded default does not load the Redis client. */
async function redisStore(): Promise<RedisStoreModule["RedisStore"]> {
  const specifier = "./store/redis-store.js";
  return ((await import(specifier)) as RedisStoreModule).RedisStore;
}

/** A Redis URL without its credentials, for start-up messages. */
export function safeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return "(invalid URL)";
  }
}

export async function openStore(config: RelayConfig): Promise<{ store: Store; description: string }> {
  switch (config.store.kind) {
    case "sqlite": {
      const dir = resolve(config.dataDir);
      return { store: await SqliteStore.open({ dataDir: dir }), description: `embedded SQLite in ${dir}` };
    }
    case "redis":
      return {
        store: await (await redisStore()).connect(config.store.url),
        description: `Redis at ${safeRedisUrl(config.store.url)}`,
      };
    case "redis-cluster":
      return {
        store: await (await redisStore()).cluster(config.store.urls),
        description: `Redis Cluster via ${config.store.urls.map(safeRedisUrl).join(", ")}`,
      };
    default: {
      const never: never = config.store;
      throw new Error(`unknown store ${JSON.stringify(never)}`);
    }
  }
}
