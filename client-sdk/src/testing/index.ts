// @testigo/client-sdk/testing: helpers for tests and benchmarks outside this package — relay
// processes on free ports, acta photos (real when ../shared is present, synthetic otherwise), and a
// registered test campaign. Not part of the SDK's API.
export * from "../coordinator/node-test-campaign.js";
export * from "../coordinator/node-test-volunteer.js";
export * from "./acta-photos.js";
export * from "./relay-process.js";
