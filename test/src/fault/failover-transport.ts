// An HTTP transport (the SDK's pluggable `transport`) for volunteers in front of several relay
// nodes on one Redis: each request goes to the current node; a network error, a timeout or a 5xx
// moves to the next node, and the SDK's own retry (withRetry) sends the request again — now to
// the other node. Requests are made by the SDK's default transport (fetchTransport).
import type { volunteer } from "@testigo/client-sdk";
import { fetchTransport } from "@testigo/client-sdk";

export type HttpTransport = NonNullable<volunteer.VolunteerOptions["transport"]>;

export function failoverTransport(nodes: readonly string[], onSwitch?: (to: string) => void): HttpTransport {
  if (nodes.length === 0) throw new Error("failoverTransport: no relay nodes");
  let current = 0;
  const moveOn = (): void => {
    current = (current + 1) % nodes.length;
    onSwitch?.(nodes[current] as string);
  };
  return async (request) => {
    const url = new URL(request.url);
    url.host = new URL(nodes[current] as string).host;
    try {
      const response = await fetchTransport({ ...request, url: url.toString() });
      if (response.status >= 500) moveOn();
      return response;
    } catch (error) {
      moveOn();
      throw error;
    }
  };
}
