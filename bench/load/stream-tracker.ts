/** What a delivery was to its receiver: the next of a stream, a repeat, or from a stream it does not follow. */
export type Seen = 'new' | 'duplicate' | 'unexpected';

/**
 * What one receiver saw of the numbered streams it should receive: a room's
 * seq (service) or a sender's counter (baselines). Numbers must arrive
 * consecutively; a jump counts the skipped ones lost, a repeat counts a
 * duplicate, and a delivery on any other stream counts as unexpected (a
 * message of another room, or its own broadcast echoed back).
 */
export class StreamTracker {
  private readonly last = new Map<string, number>();
  private readonly followed: ReadonlySet<string>;
  private gaps = 0;
  duplicates = 0;
  unexpected = 0;

  constructor(readonly streams: readonly string[]) {
    this.followed = new Set(streams);
  }

  /** Where a stream starts for this receiver (e.g. the room's seq when it joined). */
  seed(stream: string, last: number): void {
    this.last.set(stream, last);
  }

  see(stream: string, n: number): Seen {
    if (!this.followed.has(stream)) {
      this.unexpected += 1;
      return 'unexpected';
    }
    const previous = this.last.get(stream) ?? 0;
    if (n <= previous) {
      this.duplicates += 1;
      return 'duplicate';
    }
    this.gaps += n - previous - 1;
    this.last.set(stream, n);
    return 'new';
  }

  lastOf(stream: string): number {
    return this.last.get(stream) ?? 0;
  }

  /** Skipped numbers since the last reset plus those never seen at the tail, given each stream's last settled number. */
  lost(expected: ReadonlyMap<string, number>): number {
    return this.gaps + this.missingAtTail(expected);
  }

  /** Numbers after the last one seen, up to each stream's last settled number: still missing however many resets ago they were sent. */
  missingAtTail(expected: ReadonlyMap<string, number>): number {
    let tail = 0;
    for (const stream of this.streams)
      tail += Math.max(0, (expected.get(stream) ?? 0) - this.lastOf(stream));
    return tail;
  }

  resetCounts(): void {
    this.gaps = 0;
    this.duplicates = 0;
    this.unexpected = 0;
  }
}
