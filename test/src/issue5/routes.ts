// Which API route (protocol/src/api/routes.ts) a request went to: "POST /v1/campaigns/:campaignId/envelopes".
import { API } from "@testigo/protocol";

const PATTERNS = Object.values(API).map((route) => ({
  method: route.method as string,
  pattern: route.path,
  regex: new RegExp(`^${route.path.replace(/:[A-Za-z]+/g, "[^/]+")}$`),
}));

/** The route pattern of METHOD PATH (query string ignored), or "METHOD ?" for a path the API does not have. */
export function routeOf(method: string, url: string): string {
  const path = url.split("?")[0] ?? url;
  const match = PATTERNS.find((p) => p.method === method && p.regex.test(path));
  return `${method} ${match?.pattern ?? "?"}`;
}
