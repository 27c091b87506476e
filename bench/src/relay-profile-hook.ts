// Preload that profiles relay processes started by another harness (the election bench):
//
//   TESTIGO_PROFILE_DIR=/tmp/prof NODE_OPTIONS="--import ./bench/dist/relay-profile-hook.js" \
//     node bench/dist/election/election.js --volunteers 30 --no-write
//   node bench/dist/cpuprofile-top.js /tmp/prof/relay-<pid>.cpuprofile
//
// Only processes running server/dist/main.js are profiled (Node refuses --cpu-prof in
// NODE_OPTIONS); the profile is written when the process exits (the in-thread inspector session
// answers synchronously, so an exit handler can stop the profiler and write the file).
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.TESTIGO_PROFILE_DIR;
if (dir !== undefined && process.argv.some((arg) => arg.endsWith("server/dist/main.js"))) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.start");
  let written = false;
  const write = (): void => {
    if (written) return;
    written = true;
    session.post("Profiler.stop", (err, result) => {
      if (err === null) writeFileSync(join(dir, `relay-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  };
  const exit = process.exit.bind(process);
  process.exit = ((code?: number) => {
    write();
    exit(code);
  }) as typeof process.exit;
  process.on("exit", write);
}
