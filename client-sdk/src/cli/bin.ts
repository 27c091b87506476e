#!/usr/bin/env node
// Entry point of the `testigo` command: the only file of the command that reads process.*.
import { runCli } from "./main.js";

process.exitCode = await runCli({
  argv: process.argv.slice(2),
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  now: Date.now,
  onInterrupt: (handler) => {
    const once = () => {
      process.off("SIGINT", once);
      process.off("SIGTERM", once);
      handler();
    };
    process.on("SIGINT", once);
    process.on("SIGTERM", once);
    return () => {
      process.off("SIGINT", once);
      process.off("SIGTERM", once);
    };
  },
});
