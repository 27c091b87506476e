// Entry point of `npm start` / `node server/dist/main.js`: the relay with flags and environment.
import { runRelay } from "./run-relay.js";

process.exitCode = await runRelay(process.argv.slice(2));
