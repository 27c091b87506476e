import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "./config.js";
import { type RawSettings, readEnv } from "./env.js";

const empty = readEnv({});

function problems(raw: Partial<RawSettings>): readonly string[] {
  try {
    loadConfig({ ...empty, ...raw });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("relay configuration", () => {
  it("defaults to the embedded store in ./testigo-data on 127.0.0.1:8787", () => {
    const config = loadConfig(empty);
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.port, 8787);
    assert.equal(config.dataDir, "./testigo-data");
    assert.deepEqual(config.store, { kind: "sqlite" });
    assert.equal(config.relayToken, undefined);
  });

  it("reads TESTIGO_* variables", () => {
    const config = loadConfig(
      readEnv({ TESTIGO_PORT: "9000", TESTIGO_REDIS_CLUSTER: "redis://a:1, redis://b:2", TESTIGO_LOG_LEVEL: "warn" }),
    );
    assert.equal(config.port, 9000);
    assert.deepEqual(config.store, { kind: "redis-cluster", urls: ["redis://a:1", "redis://b:2"] });
    assert.equal(config.logLevel, "warn");
  });

  it("names every bad value, and never echoes the token", () => {
    assert.match(problems({ port: "70000" })[0] ?? "", /--port \/ TESTIGO_PORT: must be at most 65535/);
    assert.match(
      problems({ redis: "redis://a", redisCluster: "redis://b" })[0] ?? "",
      /either --redis or --redis-cluster/,
    );
    assert.match(problems({ tlsCert: "c.pem" })[0] ?? "", /--tls-cert and --tls-key go together/);
    assert.match(problems({ logLevel: "loud" })[0] ?? "", /--log-level/);
    const tokenProblem = problems({ relayToken: "short-secret" })[0] ?? "";
    assert.match(tokenProblem, /TESTIGO_RELAY_TOKEN: must be at least 32 characters/);
    assert.equal(tokenProblem.includes("short-secret"), false);
    assert.equal(problems({ port: "x", rateCapacity: "0", jsonBodyLimit: "1" }).length, 3);
  });

  it("never echoes a Redis password from a bad URL", () => {
    for (const raw of [
      { redis: "redis://:hunter2-pass@bad host:6379" },
      { redis: "rediss://relay:hunter2-pass@" },
      { redisCluster: "redis://:hunter2-pass@h1:7000,ftp://:hunter2-pass@h2:7001" },
    ]) {
      const problem = problems(raw).join("\n");
      assert.match(problem, /--redis/, problem);
      assert.equal(problem.includes("hunter2"), false, problem);
      assert.match(problem, /\*\*\*@/, "says where the password was");
    }
  });
});
