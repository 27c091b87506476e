// A small seeded PRNG (mulberry32) for choosing faults: the same FAULT_SEED gives the same faults,
// in the same order, on the same targets. (Not for cryptography: only for test schedules.)

export interface Prng {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  shuffle<T>(items: readonly T[]): T[];
}

export function prng(seed: number): Prng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    seed: seed >>> 0,
    next,
    int,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error("prng.pick: no items");
      return items[int(0, items.length - 1)] as T;
    },
    shuffle<T>(items: readonly T[]): T[] {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(0, i);
        [out[i], out[j]] = [out[j] as T, out[i] as T];
      }
      return out;
    },
  };
}

/** FAULT_SEED (a non-negative integer) when given, else a fresh random seed. */
export function seedFrom(value: string | undefined): number {
  if (value === undefined || value === "") return Math.floor(Math.random() * 4_294_967_296);
  if (!/^\d+$/.test(value) || Number(value) > 4_294_967_295) {
    throw new Error(`FAULT_SEED must be an integer between 0 and 4294967295, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
