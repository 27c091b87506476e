// The relay's HTTP API: routes and every request/response schema.
export * from "./auth.js";
export * from "./campaigns.js";
export * from "./errors.js";
export * from "./inbox.js";
export * from "./invites.js";
export * from "./live.js";
export * from "./mailbox.js";
export * from "./photos.js";
export * from "./routes.js";
export * from "./submissions.js";
export * from "./volunteers.js";
