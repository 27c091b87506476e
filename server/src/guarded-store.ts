// Wraps the store so that any failure of it becomes STORE_UNAVAILABLE (503): the relay fails
// closed, never answers "accepted" without a durable write, and never leaks the store's error.
import { errors } from "./errors.js";
import type { RelayLogger } from "./logger.js";
import type { Store } from "./store/store.js";

export function guardStore(store: Store, logger: RelayLogger): Store {
  // One wrapper per method, made on first use (not one closure per call).
  const wrapped = new Map<PropertyKey, { readonly method: unknown; readonly guarded: unknown }>();
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      const known = wrapped.get(property);
      if (known !== undefined && known.method === value) return known.guarded;
      const guarded = async (...args: unknown[]) => {
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (err) {
          // The routes check that a campaign exists first; should a race lose it, that is a 404.
          if ((err as { code?: unknown } | null)?.code === "unknown-campaign") throw errors.notFound("campaign");
          logger.error({ err, op: String(property) }, "store operation failed");
          throw errors.storeUnavailable();
        }
      };
      wrapped.set(property, { method: value, guarded });
      return guarded;
    },
  });
}
