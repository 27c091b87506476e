// A tiny timing helper for benchmarks that report ratios. Ours and the baseline are measured in
// the same process, interleaved run by run (ours, raw, raw, ours, ...), so CPU frequency changes,
// JIT tiering and garbage collection hit both sides alike; the figure reported is the median of
// the runs, which one slow run (a GC pause, a noisy neighbour) cannot move.
import { performance } from "node:perf_hooks";

export interface MeasureOptions {
  /** Calls of each function before timing, so the JIT and libsodium's memory are warm. */
  readonly warmup: number;
  /** Calls per timed run. */
  readonly iterations: number;
  /** Timed runs per function; the median is reported. */
  readonly runs: number;
}

export interface Measurement {
  /** Median operations per second over the runs. */
  readonly opsPerSecond: number;
  /** Every run's operations per second, in run order. */
  readonly samples: readonly number[];
}

export interface Comparison {
  readonly ours: Measurement;
  readonly raw: Measurement;
  /**
   * Median over the runs of ours / raw for the run pair measured back to back: 1.0 means no
   * overhead, below 1 means slower than raw. Pairing cancels drift that affects both sides.
   */
  readonly ratio: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function timeRun(fn: () => unknown, iterations: number): number {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  const seconds = (performance.now() - start) / 1000;
  return iterations / seconds;
}

/** Operations per second of one function (median of `runs` runs). */
export function measure(fn: () => unknown, options: MeasureOptions): Measurement {
  for (let i = 0; i < options.warmup; i++) fn();
  const samples: number[] = [];
  for (let run = 0; run < options.runs; run++) samples.push(timeRun(fn, options.iterations));
  return { opsPerSecond: median(samples), samples };
}

/** Measures `ours` against `raw` with interleaved runs, alternating which one goes first. */
export function compare(ours: () => unknown, raw: () => unknown, options: MeasureOptions): Comparison {
  for (let i = 0; i < options.warmup; i++) {
    ours();
    raw();
  }
  const oursSamples: number[] = [];
  const rawSamples: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    if (run % 2 === 0) {
      oursSamples.push(timeRun(ours, options.iterations));
      rawSamples.push(timeRun(raw, options.iterations));
    } else {
      rawSamples.push(timeRun(raw, options.iterations));
      oursSamples.push(timeRun(ours, options.iterations));
    }
  }
  const ratios = oursSamples.map((value, run) => value / (rawSamples[run] as number));
  return {
    ours: { opsPerSecond: median(oursSamples), samples: oursSamples },
    raw: { opsPerSecond: median(rawSamples), samples: rawSamples },
    ratio: median(ratios),
  };
}
