// Which relay addresses the SDK accepts. Plain HTTP would show every request to the network
// (A1): it is allowed only where the network cannot see it (loopback) or where Tor already
// encrypts and authenticates the path (.onion).
import { InsecureRelayUrl } from "./errors.js";

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Parses and checks a relay base URL; returns it normalised without a trailing slash. */
export function checkRelayUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InsecureRelayUrl(`${JSON.stringify(text)} is not a URL: give the relay as https://host[:port]`);
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw new InsecureRelayUrl("a relay URL must not carry credentials, a query or a fragment");
  }
  const plain = url.protocol === "http:" || url.protocol === "ws:";
  const secure = url.protocol === "https:" || url.protocol === "wss:";
  if (!plain && !secure) throw new InsecureRelayUrl(`unsupported scheme ${url.protocol} in relay URL: use https://`);
  if (plain && !isLoopback(url.hostname) && !url.hostname.endsWith(".onion")) {
    throw new InsecureRelayUrl(
      `refusing plain ${url.protocol}// to ${url.hostname}: use https:// (plain http is allowed only on loopback or a .onion address)`,
    );
  }
  const base = `${url.protocol === "ws:" ? "http:" : url.protocol === "wss:" ? "https:" : url.protocol}//${url.host}${url.pathname}`;
  return base.replace(/\/+$/, "");
}
