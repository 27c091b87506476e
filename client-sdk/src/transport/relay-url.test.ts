import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InsecureRelayUrl } from "./errors.js";
import { checkRelayUrl } from "./relay-url.js";

describe("checkRelayUrl", () => {
  it("accepts https anywhere, and plain http only on loopback or onion addresses", () => {
    assert.equal(checkRelayUrl("https://relay.example.org/"), "https://relay.example.org");
    assert.equal(checkRelayUrl("https://relay.example.org:8443/base/"), "https://relay.example.org:8443/base");
    assert.equal(checkRelayUrl("http://127.0.0.1:8787"), "http://127.0.0.1:8787");
    assert.equal(checkRelayUrl("http://localhost:8787"), "http://localhost:8787");
    assert.equal(checkRelayUrl("http://[::1]:8787"), "http://[::1]:8787");
    assert.equal(checkRelayUrl("ws://127.0.0.2:1"), "http://127.0.0.2:1");
    assert.equal(
      checkRelayUrl("http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvw.onion"),
      "http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvw.onion",
    );
  });

  it("refuses plain http to the network, odd schemes, credentials and non-URLs with a clear error", () => {
    for (const bad of [
      "http://relay.example.org",
      "http://10.0.0.1:8787",
      "ws://192.168.1.2",
      "http://127.0.0.1.example.org",
      "ftp://relay.example.org",
      "https://user:pw@relay.example.org",
      "https://relay.example.org/?x=1",
      "relay.example.org",
      "",
    ]) {
      assert.throws(() => checkRelayUrl(bad), InsecureRelayUrl, bad);
    }
    assert.throws(() => checkRelayUrl("http://relay.example.org"), /use https:\/\//);
  });
});
