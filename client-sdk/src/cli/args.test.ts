import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { integerFlag, parseFlags, requiredFlag } from "./args.js";
import { CliError } from "./cli-error.js";
import { EXIT } from "./exit-codes.js";

const spec = { dir: { type: "string" }, count: { type: "string" }, json: { type: "boolean" } } as const;

describe("parseFlags", () => {
  it("parses flags and positionals", () => {
    const args = parseFlags(["--dir", "d", "--json", "v-1"], spec);
    assert.equal(requiredFlag(args, "dir"), "d");
    assert.equal(args.flags.json, true);
    assert.deepEqual(args.positionals, ["v-1"]);
  });

  it("refuses unknown flags as a usage error", () => {
    assert.throws(
      () => parseFlags(["--nope"], spec),
      (error: unknown) => error instanceof CliError && error.exitCode === EXIT.usage,
    );
  });

  it("refuses secrets on the command line and says where to put them", () => {
    for (const flag of ["--pin", "--pin=123456", "--passphrase", "--duress-pin", "--relay-token"]) {
      assert.throws(() => parseFlags([flag, "x"], spec), /secrets never come from the command line/, flag);
    }
  });

  it("checks integer flags and required flags", () => {
    assert.equal(integerFlag(parseFlags(["--count", "20"], spec), "count", 1, 1, 1000), 20);
    assert.equal(integerFlag(parseFlags([], spec), "count", 1, 1, 1000), 1);
    for (const bad of ["0", "1001", "2.5", "x", ""]) {
      assert.throws(() => integerFlag(parseFlags(["--count", bad], spec), "count", 1, 1, 1000), CliError, bad);
    }
    assert.throws(() => requiredFlag(parseFlags([], spec), "dir"), /--dir is required/);
  });
});
