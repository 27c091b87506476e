// Formats benchmark rows as a Markdown table (printed, and written under bench/results/).
import type { Comparison } from "./measure.js";

export interface BenchRow {
  readonly operation: string;
  readonly comparison: Comparison;
  /** Payload bytes per operation, for a MiB/s column; omitted for small messages. */
  readonly bytesPerOp?: number;
  /** The ratio this row must reach, if the project set one. */
  readonly goal?: number;
}

const MIB = 1024 * 1024;

function ops(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(1);
}

function mibPerSecond(opsPerSecond: number, bytes: number | undefined): string {
  return bytes === undefined ? "" : ((opsPerSecond * bytes) / MIB).toFixed(1);
}

export function markdownTable(rows: readonly BenchRow[]): string {
  const lines = [
    "| operation | ours (ops/s) | raw libsodium (ops/s) | ours (MiB/s) | raw (MiB/s) | ratio ours/raw | goal |",
    "|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const row of rows) {
    const { ours, raw, ratio } = row.comparison;
    const goal = row.goal === undefined ? "" : `≥ ${row.goal.toFixed(2)} ${ratio >= row.goal ? "met" : "NOT met"}`;
    lines.push(
      `| ${row.operation} | ${ops(ours.opsPerSecond)} | ${ops(raw.opsPerSecond)} | ${mibPerSecond(ours.opsPerSecond, row.bytesPerOp)} | ${mibPerSecond(raw.opsPerSecond, row.bytesPerOp)} | ${ratio.toFixed(2)} | ${goal} |`,
    );
  }
  return lines.join("\n");
}
