// @testigo/server/testing: what cross-package tests and benchmarks need from the relay package —
// throwaway redis-server processes, store digests, the embedded store with its write-fault
// injector, and the in-process relay fixture. Not part of the relay's API.
export { SqliteStore, WriteFaultInjector } from "../store/sqlite-store.js";
export * from "../test-fixture.js";
export * from "./redis-server.js";
