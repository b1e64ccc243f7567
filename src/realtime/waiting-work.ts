/** What a queued event or frame costs besides its bytes (its task and promises). */
const TASK_COST_BYTES = 512;

/**
 * Received work that waits its turn (behind a join held up by a stalled
 * database), counted per connection in bytes, `TASK_COST_BYTES` at least
 * each: past the limit, more is refused rather than kept, so that what a
 * client sends meanwhile cannot pile up in memory. A connection with
 * nothing waiting always gets its next task taken.
 */
export class WaitingWork<Owner extends object> {
  private readonly bytes = new WeakMap<Owner, number>();

  constructor(private readonly limitBytes: number) {}

  /**
   * Counts a task of `bytes` for `owner`, unless it would take those
   * waiting past the limit.
   * @returns its cost, to `release` once it has run, or undefined when refused
   */
  admit(owner: Owner, bytes: number): number | undefined {
    const cost = Math.max(bytes, TASK_COST_BYTES);
    const waiting = this.bytes.get(owner) ?? 0;
    if (waiting > 0 && waiting + cost > this.limitBytes) return undefined;
    this.bytes.set(owner, waiting + cost);
    return cost;
  }

  /** Whether `owner` has work waiting or running: what it sends now waits its turn. */
  has(owner: Owner): boolean {
    return this.bytes.has(owner);
  }

  release(owner: Owner, cost: number): void {
    const left = (this.bytes.get(owner) ?? cost) - cost;
    if (left > 0) this.bytes.set(owner, left);
    else this.bytes.delete(owner);
  }
}
