/** Percentiles of a sample, in the sample's unit. */
export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export const EMPTY_SUMMARY: Summary = { count: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };

function percentile(sorted: Float64Array, fraction: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

export function summarize(values: ArrayLike<number>): Summary {
  if (values.length === 0) return EMPTY_SUMMARY;
  const sorted = Float64Array.from(values).sort();
  let total = 0;
  for (const value of sorted) total += value;
  return {
    count: sorted.length,
    mean: total / sorted.length,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1],
  };
}

/** Collects samples up to a cap, then keeps a uniform reservoir of them. */
export class Recorder {
  private samples: number[] = [];
  private seen = 0;

  constructor(private readonly capacity = 1_000_000) {}

  add(value: number): void {
    this.seen += 1;
    if (this.samples.length < this.capacity) {
      this.samples.push(value);
      return;
    }
    const slot = Math.floor(Math.random() * this.seen);
    if (slot < this.capacity) this.samples[slot] = value;
  }

  summary(): Summary {
    return summarize(this.samples);
  }

  reset(): void {
    this.samples = [];
    this.seen = 0;
  }
}
