// The queue checker: compares what the relay acknowledged (the workers' history) with what the
// coordinator wrote (OUT/reports.jsonl) and counts
//   lost        acknowledged envelopes missing from the output (must be 0),
//   duplicated  output ids (or volunteer + seq) written more than once (must be 0),
//   reordered   per volunteer, a report written after one with a higher seq (must be 0),
//   damaged     acknowledged actas whose photos are missing or differ from what was taken.
// An acta with photos is written only once its photos have arrived (docs/cli-coordinator.md), so
// it may follow later status reports: actas are ordered among themselves, the other reports among
// themselves, and an acta written after later reports is counted as "deferred", not reordered.
import type { HistoryRecord } from "./history.js";

/** The fields of an OUT/reports.jsonl line the checker reads. */
export interface OutputLine {
  readonly id: string;
  readonly kind: string;
  readonly volunteer: string;
  readonly seq: number;
  readonly photos?: readonly {
    readonly photoId: string;
    readonly path: string | null;
    readonly sha256: string;
    readonly status: string;
  }[];
}

export interface CheckInput {
  readonly history: readonly HistoryRecord[];
  readonly lines: readonly OutputLine[];
  /** SHA-256 (hex) of a photo file the coordinator wrote (path relative to OUT), if it exists. */
  readonly photoSha256?: (path: string) => string | undefined;
}

export interface CheckReport {
  readonly volunteers: number;
  readonly queued: number;
  readonly acknowledged: number;
  /** Acknowledged and found in the output. */
  readonly delivered: number;
  readonly lost: readonly { readonly volunteer: string; readonly id: string; readonly kind: string }[];
  readonly duplicated: readonly { readonly key: string; readonly count: number }[];
  readonly reordered: readonly {
    readonly volunteer: string;
    readonly id: string;
    readonly seq: number;
    readonly afterSeq: number;
  }[];
  readonly damaged: readonly { readonly volunteer: string; readonly id: string; readonly reason: string }[];
  readonly refused: readonly { readonly volunteer: string; readonly id: string; readonly code: string }[];
  /** In the output without a recorded acknowledgement (a worker killed between the relay's answer and its record). */
  readonly deliveredUnacknowledged: number;
  /** Actas written after a report with a higher seq, because they waited for their photos (allowed). */
  readonly deferredActas: number;
  readonly ok: boolean;
}

type Queued = Extract<HistoryRecord, { t: "queued" }>;

export function checkQueue(input: CheckInput): CheckReport {
  const pseudonyms = new Map<string, string>();
  const queued = new Map<string, Queued>();
  const acked = new Map<string, Extract<HistoryRecord, { t: "acked" }>>();
  const refused: { volunteer: string; id: string; code: string }[] = [];
  for (const record of input.history) {
    if (record.t === "start") pseudonyms.set(record.volunteer, record.pseudonym);
    else if (record.t === "queued") queued.set(record.id, record);
    else if (record.t === "acked") acked.set(record.id, record);
    else if (record.t === "refused") refused.push({ volunteer: record.volunteer, id: record.id, code: record.code });
  }
  const ours = new Set(pseudonyms.values());

  const byId = new Map<string, OutputLine>();
  const idCounts = new Map<string, number>();
  const seqCounts = new Map<string, number>();
  for (const line of input.lines) {
    byId.set(line.id, line);
    idCounts.set(line.id, (idCounts.get(line.id) ?? 0) + 1);
    if (ours.has(line.volunteer)) {
      const key = `${line.volunteer} seq ${line.seq}`;
      seqCounts.set(key, (seqCounts.get(key) ?? 0) + 1);
    }
  }
  const duplicated = [...idCounts, ...seqCounts]
    .filter(([, count]) => count > 1)
    .map(([key, count]) => ({ key, count }));

  const lost: { volunteer: string; id: string; kind: string }[] = [];
  const damaged: { volunteer: string; id: string; reason: string }[] = [];
  for (const ack of acked.values()) {
    const line = byId.get(ack.id);
    if (line === undefined) {
      lost.push({ volunteer: ack.volunteer, id: ack.id, kind: ack.kind });
      continue;
    }
    const sent = queued.get(ack.id)?.photos ?? [];
    for (const photo of sent) {
      const got = line.photos?.find((p) => p.photoId === photo.photoId);
      let reason: string | undefined;
      if (got === undefined) reason = `photo ${photo.photoId} missing from the line`;
      else if (got.status !== "ok" || got.path === null) reason = `photo ${photo.photoId} is ${got.status}`;
      else if (got.sha256 !== photo.sha256) reason = `photo ${photo.photoId}: SHA-256 in the line differs`;
      else if (input.photoSha256 !== undefined && input.photoSha256(got.path) !== photo.sha256) {
        reason = `photo ${photo.photoId}: the file written differs from the photo taken`;
      }
      if (reason !== undefined) damaged.push({ volunteer: ack.volunteer, id: ack.id, reason });
    }
  }

  const reordered: { volunteer: string; id: string; seq: number; afterSeq: number }[] = [];
  let deferredActas = 0;
  const names = new Map([...pseudonyms].map(([name, pseudonym]) => [pseudonym, name]));
  const maxSeq = new Map<string, number>();
  for (const line of input.lines) {
    if (!ours.has(line.volunteer)) continue;
    // Only a line with photos can wait for them (an acta, or a duress-key-signed acta written as
    // kind "duress" with signedKind "acta").
    const deferrable = (line.photos?.length ?? 0) > 0;
    const mine = `${line.volunteer}/${deferrable ? "acta" : "other"}`;
    const other = `${line.volunteer}/${deferrable ? "other" : "acta"}`;
    const before = maxSeq.get(mine) ?? -1;
    if (line.seq < before) {
      reordered.push({
        volunteer: names.get(line.volunteer) ?? line.volunteer,
        id: line.id,
        seq: line.seq,
        afterSeq: before,
      });
    }
    if (deferrable && line.seq < (maxSeq.get(other) ?? -1)) deferredActas++;
    maxSeq.set(mine, Math.max(before, line.seq));
  }

  const deliveredUnacknowledged = [...queued.keys()].filter((id) => !acked.has(id) && byId.has(id)).length;
  return {
    volunteers: pseudonyms.size,
    queued: queued.size,
    acknowledged: acked.size,
    delivered: acked.size - lost.length,
    lost,
    duplicated,
    reordered,
    damaged,
    refused,
    deliveredUnacknowledged,
    deferredActas,
    ok: lost.length === 0 && duplicated.length === 0 && reordered.length === 0 && damaged.length === 0,
  };
}

/** A readable report: the counts, then up to `max` examples of each failure. */
export function formatReport(report: CheckReport, max = 10): string {
  const verdict = report.ok ? "PASS" : "FAIL";
  const lines = [
    `queue checker: ${verdict}`,
    `  volunteers ${report.volunteers}, queued ${report.queued}, acknowledged ${report.acknowledged}, delivered ${report.delivered}`,
    `  lost ${report.lost.length}, duplicated ${report.duplicated.length}, reordered ${report.reordered.length}, damaged photos ${report.damaged.length}`,
    `  refused for good ${report.refused.length}; delivered without a recorded acknowledgement ${report.deliveredUnacknowledged}; actas deferred until their photos arrived ${report.deferredActas}`,
  ];
  const examples = <T>(title: string, items: readonly T[], show: (item: T) => string): void => {
    if (items.length === 0) return;
    lines.push(`  ${title}:`);
    for (const item of items.slice(0, max)) lines.push(`    ${show(item)}`);
    if (items.length > max) lines.push(`    … and ${items.length - max} more`);
  };
  examples("LOST (acknowledged, never written)", report.lost, (l) => `${l.volunteer} ${l.kind} ${l.id}`);
  examples("DUPLICATED", report.duplicated, (d) => `${d.key} written ${d.count} times`);
  examples("REORDERED", report.reordered, (r) => `${r.volunteer} ${r.id}: seq ${r.seq} after seq ${r.afterSeq}`);
  examples("DAMAGED", report.damaged, (d) => `${d.volunteer} ${d.id}: ${d.reason}`);
  examples("REFUSED", report.refused, (r) => `${r.volunteer} ${r.id}: ${r.code}`);
  return lines.join("\n");
}
