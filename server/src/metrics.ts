// Prometheus-format counters. Counts only: labels are route patterns, status classes and fixed
// event names, never ids, pseudonyms or addresses.

export type MetricEvent =
  | "submissions_accepted"
  | "submissions_duplicate"
  | "submissions_conflict"
  | "photo_chunks_stored"
  | "photo_chunks_duplicate"
  | "photos_completed"
  | "inbox_items_delivered"
  | "inbox_items_acked"
  | "mailbox_messages_stored"
  | "enrollments"
  | "sessions_opened"
  | "auth_failures"
  | "rate_limited"
  | "live_connections_opened"
  | "live_connections_closed"
  | "live_items_pushed"
  | "live_items_acked"
  | "live_dropped_slow_consumer"
  | "live_dropped_store_unavailable"
  | "live_dropped_malformed_frame"
  | "live_dropped_rate_limited";

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly events = new Map<MetricEvent, number>();

  /** The label text of each method, route and status class seen (a few dozen: routes are patterns). */
  private readonly labels = new Map<string, Map<string, string[]>>();

  request(method: string, route: string, statusCode: number): void {
    const statusClass = Math.floor(statusCode / 100);
    let byRoute = this.labels.get(method);
    if (byRoute === undefined) {
      byRoute = new Map();
      this.labels.set(method, byRoute);
    }
    let byStatus = byRoute.get(route);
    if (byStatus === undefined) {
      byStatus = [];
      byRoute.set(route, byStatus);
    }
    let key = byStatus[statusClass];
    if (key === undefined) {
      key = `method="${method}",route="${route}",status="${statusClass}xx"`;
      byStatus[statusClass] = key;
    }
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  count(event: MetricEvent, by = 1): void {
    this.events.set(event, (this.events.get(event) ?? 0) + by);
  }

  render(): string {
    const lines = [
      "# HELP testigo_http_requests_total HTTP requests by route pattern and status class.",
      "# TYPE testigo_http_requests_total counter",
    ];
    for (const [labels, value] of [...this.requests].sort()) {
      lines.push(`testigo_http_requests_total{${labels}} ${value}`);
    }
    for (const [event, value] of [...this.events].sort()) {
      lines.push(`# TYPE testigo_${event}_total counter`, `testigo_${event}_total ${value}`);
    }
    return `${lines.join("\n")}\n`;
  }
}
