// A hostile relay in front of a real one, as an SDK HttpTransport: the first request of each route
// goes to the real relay process and its answer is kept; after `arm()`, every request is answered
// with the kept answer of its route, except the mailbox read, whose answer (the real relay's, four
// slots) carries `planted` bytes in one slot. This is what a seized or malicious relay can serve a
// device: any bytes, of any length, in any slot. Envelope submissions are never replayed from the
// record: they go to the real relay (a device may report what it refused as a security notice).
import { toBase64url } from "@testigo/protocol";
import { fetchTransport, type HttpRequest, type HttpResponse } from "../../../client-sdk/dist/transport/http.js";
import { routeOf } from "./routes.js";

const MAILBOX_ROUTE = "GET /v1/campaigns/:campaignId/mailbox";
const ENVELOPE_ROUTE = "POST /v1/campaigns/:campaignId/envelopes";

export interface HostileRelay {
  readonly transport: (request: HttpRequest) => Promise<HttpResponse>;
  /** From now on, answer from the record (the record must hold every route the device uses). */
  arm(): void;
  /** The bytes the next mailbox answers carry in slot `slot` (0-3), or undefined for the real answer. */
  plant(bytes: Uint8Array | undefined, slot?: number): void;
  /** Routes of every request seen since the last call. */
  takeRoutes(): string[];
}

export function hostileRelay(): HostileRelay {
  const kept = new Map<string, HttpResponse>();
  let armed = false;
  let planted: { bytes: Uint8Array; slot: number } | undefined;
  let routes: string[] = [];

  const transport = async (request: HttpRequest): Promise<HttpResponse> => {
    const route = routeOf(request.method, new URL(request.url).pathname);
    routes.push(route);
    const record = kept.get(route);
    if (!armed || record === undefined || route === ENVELOPE_ROUTE) {
      if (armed && route !== ENVELOPE_ROUTE) throw new Error(`hostile relay: no recorded answer for ${route}`);
      const response = await fetchTransport(request);
      if (response.status >= 200 && response.status < 300) kept.set(route, response);
      return response;
    }
    if (route !== MAILBOX_ROUTE || planted === undefined) return record;
    const answer = JSON.parse(Buffer.from(record.body).toString("utf8")) as {
      slots: { messageId: string; message: string }[];
    };
    const slot = answer.slots[planted.slot];
    if (slot === undefined) throw new Error("hostile relay: the recorded mailbox answer lacks that slot");
    slot.message = toBase64url(planted.bytes);
    const body = new Uint8Array(Buffer.from(JSON.stringify(answer), "utf8"));
    return { status: record.status, headers: { ...record.headers, "content-length": String(body.length) }, body };
  };

  return {
    transport,
    arm: () => {
      armed = true;
    },
    plant: (bytes, slot = 0) => {
      planted = bytes === undefined ? undefined : { bytes, slot };
    },
    takeRoutes: () => {
      const seen = routes;
      routes = [];
      return seen;
    },
  };
}
