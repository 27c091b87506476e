// @testigo/client-sdk/node: the Node-only pieces (files on disk), kept out of the main entry so
// the core stays loadable in a browser.
export * from "./coordinator/node-output.js";
export * from "./storage/node-storage.js";
