// The coordinator side of the SDK (browser-safe: node-output.ts is imported only by Node code).
export * from "./campaign.js";
export * from "./device.js";
export * from "./devices.js";
export * from "./errors.js";
export * from "./fetch.js";
export * from "./follow.js";
export * from "./invites.js";
export * from "./output.js";
export * from "./relay-retry.js";
export * from "./state.js";
export * from "./vault.js";
export * from "./volunteers.js";
export * from "./wipe.js";
