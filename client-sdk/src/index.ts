// @testigo/client-sdk: what volunteer and coordinator apps are built from.

export * from "./coordinator/index.js";
export * from "./crypto/key-slots.js";
export * from "./storage/memory-storage.js";
export * from "./storage/profile-store.js";
export * from "./storage/storage.js";
export * from "./transport/errors.js";
export * from "./transport/http.js";
export * from "./transport/live-inbox.js";
export * from "./transport/relay-client.js";
export * as volunteer from "./volunteer/index.js";
