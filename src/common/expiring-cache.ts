/**
 * Remembers answers for a short time, up to a bounded number of keys, on the
 * monotonic clock: a wall clock stepped forward would otherwise forget them
 * early (a closure forgotten while an admission checked against it runs).
 */
export class ExpiringCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= performance.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    // Set anew, not in place: Maps iterate in insertion order, which is then
    // the order entries expire in, so the first is always the one to drop.
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expiresAt: performance.now() + this.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
