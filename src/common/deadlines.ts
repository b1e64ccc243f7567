/** Node fires a timer with a longer delay after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `expire(item)` once an item's deadline has passed, for many items at
 * once: items are grouped by the `resolutionMs` slot their deadline falls in,
 * and each slot holds one timer, so that an item costs a set entry rather
 * than a timer and a closure of its own. An item expires at most
 * `resolutionMs` late, never early. Timers do not keep the process alive.
 */
export class Deadlines<T> {
  private readonly slots = new Map<number, { items: Set<T>; timer: NodeJS.Timeout }>();

  constructor(
    private readonly expire: (item: T) => void,
    private readonly resolutionMs = 1_000,
  ) {}

  /** `deadline` in ms since the epoch; one already passed expires on the next turn. */
  add(item: T, deadline: number): void {
    const slot = this.slotOf(deadline);
    let entry = this.slots.get(slot);
    if (!entry) {
      entry = { items: new Set(), timer: this.timerFor(slot) };
      this.slots.set(slot, entry);
    }
    entry.items.add(item);
  }

  /** With the deadline it was added with. */
  remove(item: T, deadline: number): void {
    const slot = this.slotOf(deadline);
    const entry = this.slots.get(slot);
    if (!entry?.items.delete(item) || entry.items.size > 0) return;
    clearTimeout(entry.timer);
    this.slots.delete(slot);
  }

  /** From the deadline it was added with to another one. */
  move(item: T, from: number, to: number): void {
    this.remove(item, from);
    this.add(item, to);
  }

  private slotOf(deadline: number): number {
    return Math.ceil(deadline / this.resolutionMs) * this.resolutionMs;
  }

  /** Node cannot wait longer than about 24.8 days at once: a later slot waits again. */
  private timerFor(slot: number): NodeJS.Timeout {
    const delay = Math.min(Math.max(slot - Date.now(), 0), MAX_TIMER_MS);
    return setTimeout(() => this.fire(slot), delay).unref();
  }

  private fire(slot: number): void {
    const entry = this.slots.get(slot);
    if (entry && Date.now() < slot) {
      entry.timer = this.timerFor(slot);
      return;
    }
    this.slots.delete(slot);
    for (const item of entry?.items ?? []) this.expire(item);
  }
}
