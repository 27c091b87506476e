// A simulated phone's network link, as the SDK's pluggable HTTP transport:
//  - DNS round robin: requests for the campaign's relay URL go to the node this phone resolved;
//  - a link that drops: when armed, a photo upload request (one chunk, or a run of up to 16 chunks:
//    the SDK sends runs) is cut mid-body (a real HTTP request that sends half its bytes, then the
//    socket is destroyed), and the link then stays down for `outageMs` (every request fails at
//    once), as when a phone loses coverage.
// Requests otherwise go through the SDK's default transport (fetchTransport).
import { request as httpRequest } from "node:http";
import { performance } from "node:perf_hooks";
import type { volunteer } from "@testigo/client-sdk";
import { fetchTransport } from "@testigo/client-sdk";

export type HttpTransport = NonNullable<volunteer.VolunteerOptions["transport"]>;
type HttpRequest = Parameters<HttpTransport>[0];

const CHUNK_PUT = /\/photos\/[^/]+\/(chunks|chunk-runs)\/\d+$/;

export class LinkDown extends Error {
  override readonly name = "LinkDown";
}

/** Sends the first half of the body, then destroys the socket: the relay sees a truncated upload. */
function cutMidBody(req: HttpRequest): Promise<void> {
  return new Promise((resolve) => {
    const body = req.body ?? new Uint8Array();
    const outgoing = httpRequest(req.url, {
      method: req.method,
      headers: { ...req.headers, "content-length": String(body.length) },
    });
    outgoing.on("error", () => resolve());
    outgoing.write(body.subarray(0, Math.floor(body.length / 2)), () => {
      outgoing.destroy();
      resolve();
    });
  });
}

export class Link {
  private downUntil = 0;
  /** Photo upload requests still to let through before the cut; -1: no cut armed. */
  private cutAfter = -1;
  cuts = 0;
  /** Requests answered, and the time they took in total (ms). */
  requests = 0;
  requestMs = 0;

  constructor(
    private readonly relayUrl: string,
    private readonly nodeUrl: string,
    private readonly outageMs: number,
  ) {}

  /** The photo upload request after the next `afterRequests` ones is cut mid-body. */
  armCut(afterRequests: number): void {
    this.cutAfter = afterRequests;
  }

  readonly transport: HttpTransport = async (req) => {
    if (Date.now() < this.downUntil) throw new LinkDown("no network (simulated outage)");
    const url = req.url.startsWith(this.relayUrl) ? this.nodeUrl + req.url.slice(this.relayUrl.length) : req.url;
    if (this.cutAfter >= 0 && req.method === "PUT" && CHUNK_PUT.test(url) && this.cutAfter-- === 0) {
      this.cuts++;
      await cutMidBody({ ...req, url });
      this.downUntil = Date.now() + this.outageMs;
      throw new LinkDown("connection lost mid-upload (simulated)");
    }
    const t0 = performance.now();
    const response = await fetchTransport({ ...req, url });
    this.requests++;
    this.requestMs += performance.now() - t0;
    return response;
  };
}

/** A transport that only rewrites the relay URL to a node (coordinator devices). */
export function nodeTransport(relayUrl: string, nodeUrl: string): HttpTransport {
  return new Link(relayUrl, nodeUrl, 0).transport;
}
