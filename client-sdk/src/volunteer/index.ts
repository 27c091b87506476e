// The volunteer side of the SDK: enrollment, the encrypted outbox, sync and status, duress, wipe.
export * from "./control-refusal.js";
export * from "./device.js";
export * from "./duress.js";
export * from "./enroll.js";
export * from "./errors.js";
export * from "./outbox.js";
export * from "./records.js";
export * from "./retry.js";
export * from "./sealing.js";
export * from "./sync.js";
export * from "./volunteer.js";
export * from "./volunteer-store.js";
export * from "./wipe.js";
