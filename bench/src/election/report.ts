// Figures of an election-night run, as a Markdown report and an SVG chart (bench/results/).
import type { LoadResult } from "../relay-load.js";
import {
  type Accepted,
  type CoordinatorCounters,
  type CoordinatorStats,
  type EnrollStats,
  type NightStats,
  percentile,
} from "./messages.js";
import type { ElectionOptions } from "./options.js";
import { SCALES } from "./options.js";

export interface ElectionResults {
  readonly options: ElectionOptions;
  readonly realPhotos: boolean;
  readonly photoCount: number;
  readonly bare: { readonly route: LoadResult; readonly tcp: LoadResult; readonly concurrency: number };
  readonly enroll: { readonly stats: EnrollStats; readonly seconds: number; readonly sentSeconds: number };
  readonly night: {
    readonly start: number;
    readonly end: number;
    /** When the last volunteer had everything accepted. */
    readonly sentAt: number;
    readonly stats: readonly NightStats[];
    readonly accepted: readonly Accepted[];
    readonly written: readonly ReadonlyMap<string, number>[];
    /** (item, device) pairs accepted and never written: lost. */
    readonly missing: number;
    readonly duplicates: number;
  };
  readonly coordinators: readonly CoordinatorStats[];
  /** What each coordinator device sent and received during the night. */
  readonly coordinatorCounters: readonly CoordinatorCounters[];
  /** HTTP requests each relay node answered during the night, by "METHOD route" (from its /metrics). */
  readonly relayRequests: readonly ReadonlyMap<string, number>[];
  /** Peak RSS (VmHWM) of each relay node, bytes. */
  readonly relayRss: readonly number[];
  /** CPU seconds (user + system) each group of processes used during the night. */
  readonly cpu: Readonly<Record<string, number>>;
  readonly redis: { readonly used: number; readonly peak: number };
  readonly machine: { readonly cpus: number; readonly cpu: string; readonly load: number; readonly node: string };
}

const GOALS = { fullNightSeconds: 600, p99Ms: 2_000, rssBytes: 256 * 1024 * 1024 } as const;
const MB = 1e6;
const MIB = 1024 * 1024;

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "n/a";
const met = (ok: boolean) => (ok ? "met" : "**NOT met**");
const sum = (values: readonly number[]) => values.reduce((s, v) => s + v, 0);

interface Latencies {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function latencies(values: number[]): Latencies {
  const sorted = values.sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 };
}

export interface Figures {
  readonly items: number;
  readonly actas: number;
  readonly photoBytes: number;
  readonly sendSeconds: number;
  readonly deliverSeconds: number;
  readonly perSecond: number;
  readonly mbPerSecond: number;
  readonly perDevice: Latencies;
  readonly allDevices: Latencies;
  readonly reports: Latencies;
  readonly actasLatency: Latencies;
  readonly actasNotDropped: Latencies;
  readonly dropped: number;
}

export function figures(results: ElectionResults): Figures {
  const { night } = results;
  const perDevice: number[] = [];
  const allDevices: number[] = [];
  const reports: number[] = [];
  const actas: number[] = [];
  const actasNotDropped: number[] = [];
  let last = night.start;
  for (const item of night.accepted) {
    let slowest = 0;
    let complete = true;
    for (const map of night.written) {
      const at = map.get(item.id);
      if (at === undefined) {
        complete = false;
        continue;
      }
      const ms = at - item.submitAt;
      perDevice.push(ms);
      if (item.kind === "acta") {
        actas.push(ms);
        if (!item.dropped) actasNotDropped.push(ms);
      } else reports.push(ms);
      slowest = Math.max(slowest, ms);
      last = Math.max(last, at);
    }
    if (complete) allDevices.push(slowest);
  }
  const photoBytes = sum(night.accepted.map((i) => i.photoBytes));
  const deliverSeconds = (last - night.start) / 1000;
  return {
    items: night.accepted.length,
    actas: night.accepted.filter((i) => i.kind === "acta").length,
    photoBytes,
    sendSeconds: (night.sentAt - night.start) / 1000,
    deliverSeconds,
    perSecond: night.accepted.length / deliverSeconds,
    mbPerSecond: photoBytes / MB / deliverSeconds,
    perDevice: latencies(perDevice),
    allDevices: latencies(allDevices),
    reports: latencies(reports),
    actasLatency: latencies(actas),
    actasNotDropped: latencies(actasNotDropped),
    dropped: night.accepted.filter((i) => i.dropped).length,
  };
}

export function markdownReport(results: ElectionResults, command: string): string {
  const { options, bare, enroll, night, machine } = results;
  const f = figures(results);
  const volunteers = options.volunteers;
  const fullItems = SCALES.full * (options.reportsPerVolunteer + 1);
  const projected = fullItems / f.perSecond;
  const bareRps = bare.route.perSecond;
  const tcpMb = bare.tcp.bytes / bare.tcp.seconds / MB;
  const quarantined = sum(results.coordinators.map((c) => c.quarantined));
  const mismatches = sum(results.coordinators.map((c) => c.photoMismatches));
  const refused = sum(night.stats.map((s) => s.refused));
  const cuts = sum(night.stats.map((s) => s.cuts));
  const resumed = sum(night.stats.map((s) => s.resumedSyncs));
  const maxRss = Math.max(...results.relayRss);
  const cpuTotal = sum(Object.values(results.cpu));
  const idlePerSecond = machine.cpus / (cpuTotal / Math.max(1, f.items));
  const lat = (l: Latencies) => `${fmt(l.p50)} | ${fmt(l.p99)} | ${fmt(l.max)} | ${fmt(l.count)}`;
  const enrollMs = enroll.stats.msSorted;
  return [
    "# Election-night benchmark",
    "",
    `Command: \`${command}\``,
    "",
    `Node ${machine.node}, ${machine.cpus} × ${machine.cpu}, load average ${machine.load.toFixed(2)} at the end (the machine is shared).`,
    `${fmt(volunteers)} volunteers (scale ${options.scale}${volunteers === SCALES[options.scale] ? "" : ", overridden by --volunteers"}), each: enrollment by invite, then ${options.reportsPerVolunteer} reports (status and check-in alternating) and one acta photo (${results.realPhotos ? `the ${results.photoCount} real acta scans of ../shared/data/actas/images, cycled` : `${results.photoCount} synthetic 300 kB JPEGs: the real scans were absent`}), seed ${options.seed}.`,
    `Volunteers: SDK devices in ${options.workers} worker processes, ${options.concurrency} active at once per worker, each report sent as soon as it is queued (one sync run per report, session kept); key slots use argon2id at the SDK's MIN_KDF_LIMITS (opsLimit 1, 8 KiB) so thousands of simulated phones fit on the CPUs, not the phones' real limits.`,
    `Links that drop: ${fmt(options.dropFraction * 100, 1)}% of acta uploads are cut in the middle of an upload request's body (one run of up to 16 chunks; the socket is destroyed after half its bytes, and the relay stores nothing of that run), the link stays down ${options.outageMs} ms, the app syncs again and the upload resumes from the chunks the relay has. ${fmt(cuts)} cuts, ${fmt(resumed)} sync runs repeated.`,
    `Relay: ${results.relayRss.length} nodes (\`node server/dist/main.js --redis URL\`, as \`testigo relay --redis URL\`), phones and coordinator devices spread over them; Redis with \`appendonly yes\`, \`appendfsync always\` (the operator guide's recommendation); the per-session rate limit raised to ${fmt(1_000_000)} (the default 120 burst / 10 per s applies to coordinator devices too and would stop their fetches).`,
    `Coordinators: ${results.coordinators.length} devices in their own processes, each draining the inbox continuously ${options.coordinatorMode === "follow" ? "with the SDK's `followInbox` (`--coordinator-mode follow`, what `testigo coordinator fetch --follow` runs: items pushed over the relay's WebSocket as they arrive, acked on it, one fetch session for the night; photo chunks downloaded over HTTP)" : "with the SDK's `fetchInbox` in a loop (`--coordinator-mode poll`: pages of 100, 100 ms apart when a run wrote nothing)"}, each photo checked byte for byte against the photos sent.`,
    "",
    "## Headline",
    "",
    "| figure | value | goal |",
    "|---|---:|---|",
    `| night: submissions accepted and decrypted by all ${results.coordinators.length} coordinators | ${fmt(f.items)} (${fmt(f.actas)} actas) in ${fmt(f.deliverSeconds, 1)} s | |`,
    `| submissions/s (submit → decrypted everywhere) | ${fmt(f.perSecond, 1)} | |`,
    `| photo MB/s (plaintext, ${fmt(f.photoBytes / MB, 1)} MB) | ${fmt(f.mbPerSecond, 2)} | |`,
    `| full night (${fmt(SCALES.full)} actas + ${fmt(SCALES.full * options.reportsPerVolunteer)} reports) at this rate | ${fmt(projected)} s (projection) | ≤ ${GOALS.fullNightSeconds} s ${met(projected <= GOALS.fullNightSeconds)} |`,
    `| p50 / p99 submit → decrypted at a coordinator, ms | ${fmt(f.perDevice.p50)} / ${fmt(f.perDevice.p99)} | p99 ≤ ${GOALS.p99Ms} ${met(f.perDevice.p99 <= GOALS.p99Ms)} |`,
    `| relay peak RSS per node (VmHWM), MiB | ${results.relayRss.map((r) => fmt(r / MIB, 1)).join(" / ")} | ≤ 256 ${met(maxRss <= GOALS.rssBytes)} |`,
    `| Redis used_memory peak / at the end, MiB | ${fmt(results.redis.peak / MIB, 1)} / ${fmt(results.redis.used / MIB, 1)} | |`,
    `| lost (accepted, never decrypted; item × device) | ${fmt(night.missing)} | 0 ${met(night.missing === 0)} |`,
    `| duplicated (written twice by a device, or accepted twice) | ${fmt(night.duplicates)} | 0 ${met(night.duplicates === 0)} |`,
    `| quarantined / photo bytes differing / refused | ${fmt(quarantined)} / ${fmt(mismatches)} / ${fmt(refused)} | 0 ${met(quarantined + mismatches + refused === 0)} |`,
    "",
    "## Against the bare stack (same run, same machine)",
    "",
    "| | election night | bare stack | ratio |",
    "|---|---:|---:|---:|",
    `| requests/s: submissions (each a sync run: roster, epoch keys, envelope, photo chunks, mailbox) vs a bare fastify route with zod (${fmt(bare.route.requests)} requests, ${results.bare.concurrency} in flight) | ${fmt(f.perSecond, 1)} | ${fmt(bareRps)} | ${fmt(f.perSecond / bareRps, 3)} |`,
    `| MB/s: acta photos submit → decrypted at ${results.coordinators.length} devices vs one loopback TCP transfer (${fmt(bare.tcp.bytes / MIB)} MiB) | ${fmt(f.mbPerSecond, 2)} | ${fmt(tcpMb)} | ${fmt(f.mbPerSecond / tcpMb, 4)} |`,
    "",
    "The bare stack's figures also say how busy the machine was during the run: compare them with the same baselines in `bench/results/relay.md`.",
    "",
    ...requestsSection(results, f.items),
    "## CPU per submission",
    "",
    "CPU time (user + system, /proc/PID/stat) each group of processes used during the night, divided by the submissions. The last row divides this machine's cores by the total: the submissions/s the whole simulation could reach if it had every core to itself (an upper bound, since waits on fsync and the network do not count). These figures depend far less on how busy the machine was than the rates do, but not nothing: on a crowded machine (load 15 and more) every group's CPU per submission rises by a quarter to a third, code unchanged; compare runs made minutes apart.",
    "",
    "| processes | CPU s | CPU ms per submission |",
    "|---|---:|---:|",
    ...Object.entries(results.cpu).map(
      ([name, seconds]) => `| ${name} | ${fmt(seconds, 1)} | ${fmt((seconds * 1000) / Math.max(1, f.items), 2)} |`,
    ),
    `| all | ${fmt(cpuTotal, 1)} | ${fmt((cpuTotal * 1000) / Math.max(1, f.items), 2)} |`,
    `| ${machine.cpus} cores ÷ CPU per submission | | ${fmt(idlePerSecond, 1)} submissions/s → a full night in ${fmt(fullItems / idlePerSecond)} s |`,
    "",
    "## Latency, submit → decrypted (ms)",
    "",
    "Submit: the volunteer's app queues the item (sealing included) and syncs. Decrypted: the coordinator device has verified and decrypted it (photos included) and written its line.",
    "",
    "| what | p50 | p99 | max | samples |",
    "|---|---:|---:|---:|---:|",
    `| any item, at each device | ${lat(f.perDevice)} |`,
    `| any item, at all ${results.coordinators.length} devices | ${lat(f.allDevices)} |`,
    `| status reports and check-ins | ${lat(f.reports)} |`,
    `| actas with their photo | ${lat(f.actasLatency)} |`,
    `| actas whose link did not drop | ${lat(f.actasNotDropped)} |`,
    "",
    "## Enrollment (timed apart from the night)",
    "",
    "| figure | value |",
    "|---|---:|",
    `| volunteers enrolled (invite redeemed, keys, key slots, \`enrolled\` report sent) | ${fmt(enroll.stats.enrolled)} in ${fmt(enroll.sentSeconds, 1)} s (${fmt(enroll.stats.enrolled / enroll.sentSeconds, 1)}/s) |`,
    `| … and registered by all ${results.coordinators.length} coordinator devices | ${fmt(enroll.seconds, 1)} s |`,
    `| one enrollment p50 / p99, ms | ${fmt(percentile(enrollMs, 50))} / ${fmt(percentile(enrollMs, 99))} |`,
    `| enrollments retried after a network error / failed for good | ${fmt(enroll.stats.retried)} / ${fmt(enroll.stats.failed)} |`,
    "",
    "## Coordinator devices",
    "",
    `| device | lines written | photos | photo MB | ${options.coordinatorMode === "follow" ? "fetch sessions | live connections dropped" : "fetch runs | fetch runs stopped by a network error"} | quarantined |`,
    "|---|---:|---:|---:|---:|---:|---:|",
    ...results.coordinators.map(
      (c, i) =>
        `| ${i} | ${fmt(c.written)} | ${fmt(c.photos)} | ${fmt(c.photoBytes / MB, 1)} | ${fmt(c.fetchRuns)} | ${fmt(c.fetchErrors)} | ${fmt(c.quarantined)} |`,
    ),
    "",
    "The chart (`election.svg`): submissions accepted by the relay and decrypted by every coordinator device, per second, and the p50 / p99 latency of the items by the time they were submitted (about 150 bins over the night).",
    "",
  ].join("\n");
}

/**
 * HTTP requests per submission during the night, by who sent them and by route at the relays.
 * Each kind is counted where it is sent (the volunteers' and coordinators' transports) and the
 * relays' own counts (their /metrics) say the same from the other side.
 */
function requestsSection(results: ElectionResults, items: number): string[] {
  const per = (n: number) => fmt(n / Math.max(1, items), 2);
  const volunteers = sum(results.night.stats.map((s) => s.requests));
  const requestMs = sum(results.night.stats.map((s) => s.requestMs));
  const counters = results.coordinatorCounters;
  const coordinators = sum(counters.map((c) => c.requests));
  const byRoute = new Map<string, number>();
  for (const node of results.relayRequests) {
    for (const [route, count] of node) byRoute.set(route, (byRoute.get(route) ?? 0) + count);
  }
  const relayTotal = sum([...byRoute.values()]);
  const live = results.options.coordinatorMode === "follow";
  const frames = (pick: (c: CoordinatorCounters) => number) => sum(counters.map(pick));
  return [
    "## Requests per submission (during the night)",
    "",
    "| who | HTTP requests | per submission |",
    "|---|---:|---:|",
    `| volunteers' devices (sent; ${fmt(requestMs / Math.max(1, volunteers), 1)} ms each on average) | ${fmt(volunteers)} | ${per(volunteers)} |`,
    `| ${counters.length} coordinator devices (sent) | ${fmt(coordinators)} | ${per(coordinators)} (${per(coordinators / Math.max(1, counters.length))} each) |`,
    `| ${results.relayRequests.length} relay nodes (answered, by their /metrics) | ${fmt(relayTotal)} | ${per(relayTotal)} |`,
    ...(live
      ? [
          `| coordinator devices' live inbox: WebSocket frames received / sent (acks) | ${fmt(frames((c) => c.framesIn))} / ${fmt(frames((c) => c.framesOut))} | ${per(frames((c) => c.framesIn))} / ${per(frames((c) => c.framesOut))} |`,
        ]
      : []),
    "",
    `The relays used ${fmt(((results.cpu.relays ?? Number.NaN) * 1000) / Math.max(1, relayTotal), 2)} ms of CPU per HTTP request they answered (all their CPU during the night${live ? ", the live inbox's WebSocket pushes included" : ""}, divided by the requests).`,
    "",
    "At the relays, by route (both nodes):",
    "",
    "| route | requests | per submission |",
    "|---|---:|---:|",
    ...[...byRoute]
      .sort((a, b) => b[1] - a[1])
      .map(([route, count]) => `| \`${route}\` | ${fmt(count)} | ${per(count)} |`),
    "",
  ];
}

const RUNS_RECORDED = "## Runs recorded";

/**
 * The new report, followed by the hand-kept "Runs recorded" section of the previous report (the
 * history of runs and what changed between them), which a run must not erase.
 */
export function keepRunsRecorded(report: string, previous: string): string {
  const at = previous.indexOf(RUNS_RECORDED);
  if (at < 0) return report;
  return `${report.trimEnd()}\n\n${previous.slice(at)}`;
}

/** Per-second series over the night: accepted, decrypted everywhere, and latency percentiles by submit second. */
function series(results: ElectionResults) {
  const { night } = results;
  const seconds = Math.max(1, Math.ceil(figures(results).deliverSeconds));
  // About 150 points whatever the length of the night: rates are per second, averaged over a bin.
  const width = Math.max(1, Math.ceil(seconds / 150));
  const bins = Math.ceil(seconds / width);
  const accepted = new Array<number>(bins + 1).fill(0);
  const delivered = new Array<number>(bins + 1).fill(0);
  const bySubmit: number[][] = Array.from({ length: bins + 1 }, () => []);
  const bin = (t: number) => Math.min(bins, Math.max(0, Math.floor((t - night.start) / 1000 / width)));
  for (const item of night.accepted) {
    accepted[bin(item.acceptedAt)] = (accepted[bin(item.acceptedAt)] ?? 0) + 1;
    let slowest = -1;
    for (const map of night.written) {
      const at = map.get(item.id);
      if (at === undefined) {
        slowest = -1;
        break;
      }
      slowest = Math.max(slowest, at);
    }
    if (slowest >= 0) {
      delivered[bin(slowest)] = (delivered[bin(slowest)] ?? 0) + 1;
      bySubmit[bin(item.submitAt)]?.push(slowest - item.submitAt);
    }
  }
  const p = (q: number) =>
    bySubmit.map((v) =>
      v.length === 0
        ? Number.NaN
        : percentile(
            v.sort((a, b) => a - b),
            q,
          ),
    );
  const perSecond = (counts: number[]) => counts.map((n) => n / width);
  return { seconds, bins, accepted: perSecond(accepted), delivered: perSecond(delivered), p50: p(50), p99: p(99) };
}

function polyline(values: readonly number[], x: (i: number) => number, y: (v: number) => number, color: string) {
  const points = values
    .map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : ""))
    .filter((s) => s !== "")
    .join(" ");
  return `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points}"/>`;
}

function panel(
  top: number,
  title: string,
  seconds: number,
  bins: number,
  lines: readonly { label: string; color: string; values: readonly number[] }[],
): string {
  const left = 60;
  const width = 640;
  const height = 160;
  const max = Math.max(1, ...lines.flatMap((l) => l.values.filter(Number.isFinite)));
  const x = (i: number) => left + (i / Math.max(1, bins)) * width;
  const y = (v: number) => top + height - (v / max) * height;
  const legend = lines
    .map((l, i) => `<text x="${left + 10 + i * 200}" y="${top + 14}" fill="${l.color}">${l.label}</text>`)
    .join("");
  return [
    `<text x="${left}" y="${top - 8}" font-weight="bold">${title}</text>`,
    `<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="none" stroke="#999"/>`,
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end">${fmt(max)}</text>`,
    `<text x="${left - 6}" y="${top + height}" text-anchor="end">0</text>`,
    `<text x="${left + width}" y="${top + height + 14}" text-anchor="end">${seconds} s</text>`,
    `<text x="${left}" y="${top + height + 14}">0 s</text>`,
    ...lines.map((l) => polyline(l.values, x, y, l.color)),
    legend,
  ].join("\n");
}

export function svgChart(results: ElectionResults): string {
  const s = series(results);
  const body = [
    panel(30, "Submissions per second", s.seconds, s.bins, [
      { label: "accepted by the relay", color: "#1f77b4", values: s.accepted },
      { label: "decrypted by every coordinator", color: "#2ca02c", values: s.delivered },
    ]),
    panel(250, "Submit → decrypted by every coordinator (ms), by submit time", s.seconds, s.bins, [
      { label: "p50", color: "#2ca02c", values: s.p50 },
      { label: "p99", color: "#d62728", values: s.p99 },
    ]),
  ].join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="720" height="450" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${body}
</svg>
`;
}
