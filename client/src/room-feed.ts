import { Backoff, type BackoffOptions } from './backoff';
import { ErrorCode, type ErrorBody, type MessageJson } from './contract';
import { ChatError } from './errors';

export interface MessagePage {
  items: MessageJson[];
  nextCursor: number | null;
}

/** What a (re)join brought: the room's newest seq at join time and what was missed. */
export interface SyncResult {
  /** Where the feed starts when it has no position yet. */
  roomLastSeq?: number;
  missed: readonly MessageJson[];
  /** More was missed than `missed` holds: fetch the rest. */
  truncated: boolean;
}

export interface RoomFeedOptions {
  roomId: string;
  /** The last seq the application already has; without it the feed starts at the room's newest. */
  since?: number;
  deliver(message: MessageJson): void;
  /** One ascending page of the room's messages after `since` (REST history); `signal` aborts when the feed closes. */
  fetchAfter(roomId: string, since: number, signal: AbortSignal): Promise<MessagePage>;
  /** Between tries of a fill that failed (an outage, a rate limit). */
  fillRetry?: Partial<BackoffOptions>;
  /**
   * A fill the service refused for good (NOT_FOUND, FORBIDDEN: the room is
   * no longer the user's): the feed has closed, rather than ask again
   * forever. A bare 403 or 404 (a proxy, a login wall) is tried again.
   */
  lost?(error: ErrorBody): void;
  /** After a fill failed, the feed has every message again, up to the room's end as last read. */
  caughtUp?(): void;
}

/** The service says the room is no longer the user's. */
function roomGone(error: unknown): error is ChatError {
  return (
    error instanceof ChatError &&
    error.fromService &&
    (error.body.code === ErrorCode.NotFound || error.body.code === ErrorCode.Forbidden)
  );
}

export const FILL_RETRY: Partial<BackoffOptions> = { baseMs: 1_000, capMs: 30_000 };

/**
 * Turns the messages of one room, arriving live, in join acks and from REST,
 * in any order and any number of times, into one delivery in seq order with
 * no gap and no duplicate. Seqs are gapless per room, so a message is handed
 * on only when it is exactly the next one; anything ahead waits in `pending`
 * until the missing ones are fetched.
 */
export class RoomFeed {
  readonly roomId: string;
  private lastSeq: number | undefined;
  private readonly pending = new Map<number, MessageJson>();
  /** A join is in flight: its ack will bring what is missing, so no REST fill meanwhile. */
  private syncing = false;
  private filling: Promise<void> | undefined;
  /** Someone asked to fetch up to the room's end: a fill under way may have read an older end. */
  private catchUpAsked = false;
  /** The position a join in flight asked to resume from. */
  private syncFrom: number | undefined;
  private readonly fillBackoff: Backoff;
  /** Set while a failed fill waits to be tried again: live messages then only wait with it. */
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** A fill the feed tried again by itself is under way: its failure was reported once already. */
  private retrying = false;
  /** A fill failed and none has succeeded since: the app was told the room may lack messages. */
  private behind = false;
  /** Joins that brought everything up to the room's end: a fill under way meanwhile read for nothing. */
  private joinsCaughtUp = 0;
  private closed = false;
  private readonly closing = new AbortController();

  constructor(private readonly options: RoomFeedOptions) {
    this.roomId = options.roomId;
    this.lastSeq = options.since;
    this.fillBackoff = new Backoff(options.fillRetry ?? FILL_RETRY);
  }

  /** Stops for good: a fill waiting to be tried again is not, and one under way is aborted. */
  close(): void {
    this.closed = true;
    this.closing.abort();
    clearTimeout(this.retryTimer);
  }

  /** The seq of the last message delivered, to resume from. */
  get since(): number | undefined {
    return this.lastSeq;
  }

  /** Messages received ahead of a gap, waiting for it to be filled. */
  get waiting(): number {
    return this.pending.size;
  }

  /** A (re)join has been sent, asking to resume after the current position. */
  beginSync(): void {
    this.syncing = true;
    this.syncFrom = this.lastSeq;
  }

  /** The join ack arrived: deliver `missed`, then fill whatever is still missing. */
  async endSync(result: SyncResult): Promise<void> {
    this.syncing = false;
    this.startAt(result.roomLastSeq);
    this.dropStale();
    this.accept(result.missed);
    if (result.truncated || this.pending.size > 0) await this.fill(result.truncated);
    else this.caughtUpByJoin();
  }

  /** The join brought everything up to the room's end: a fill waiting to be tried again has nothing to do. */
  private caughtUpByJoin(): void {
    this.joinsCaughtUp += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.catchUpAsked = false;
    this.fillBackoff.reset();
    this.noLongerBehind();
  }

  /** A live message; a gap before it is filled from REST unless a join is about to. */
  receive(message: MessageJson): Promise<void> {
    this.accept([message]);
    // A fill that failed is tried again after its backoff, not at every live message,
    // and its later tries report nothing: one under way covers this message's gap too.
    if (this.syncing || this.pending.size === 0 || this.retryTimer || this.retrying)
      return Promise.resolve();
    return this.fill(false);
  }

  private accept(messages: readonly MessageJson[]): void {
    for (const message of messages) {
      if (this.lastSeq === undefined || message.seq > this.lastSeq) {
        this.pending.set(message.seq, message);
      }
    }
    this.drain();
  }

  /**
   * Without a position, the feed starts at the room's newest seq. When the
   * join asked to resume past the room's end (a restored database, a seq of
   * another room), the server resumed from the end, and so does the feed:
   * the only time the position goes down. A room's end read before messages
   * this feed has delivered since is no such case.
   */
  private startAt(roomLastSeq: number | undefined): void {
    if (roomLastSeq === undefined) return;
    const resumedPastEnd = this.syncFrom !== undefined && roomLastSeq < this.syncFrom;
    if (this.lastSeq === undefined || resumedPastEnd) this.lastSeq = roomLastSeq;
  }

  /** Live messages held before the position was known may be at or behind it. */
  private dropStale(): void {
    const lastSeq = this.lastSeq;
    if (lastSeq === undefined) return;
    for (const seq of this.pending.keys()) if (seq <= lastSeq) this.pending.delete(seq);
  }

  /**
   * A fill still under way when the room was left reads pages nobody must
   * see; a listener that leaves the room, or closes the client, stops the
   * rest of the run.
   */
  private drain(): void {
    if (this.lastSeq === undefined) return;
    for (
      let next = this.pending.get(this.lastSeq + 1);
      next && !this.closed;
      next = this.pending.get(this.lastSeq + 1)
    ) {
      this.pending.delete(next.seq);
      this.lastSeq = next.seq;
      this.options.deliver(next);
    }
  }

  /**
   * One fill at a time; a fill already running covers the new gap too, or
   * loops for it. A catch-up asked for meanwhile makes it fetch once more from
   * where it got to: the pages it is reading may predate an outage. A fill
   * that fails rejects (the caller reports it) and is tried again later by
   * itself: in a quiet room no live message would ever ask again.
   */
  private fill(behind: boolean): Promise<void> {
    if (behind) this.catchUpAsked = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.filling ??= this.fillUntilContiguous().then(
      () => {
        this.filling = undefined;
        this.fillBackoff.reset();
        this.noLongerBehind();
      },
      (error: unknown) => {
        this.filling = undefined;
        if (this.closed) return;
        if (roomGone(error)) {
          this.close();
          this.options.lost?.(error.body);
          return;
        }
        // A join caught the feed up while this fill failed: nothing is missing.
        if (this.pending.size === 0 && !this.catchUpAsked) return;
        this.behind = true;
        this.retryFillLater();
        throw error;
      },
    );
    return this.filling;
  }

  private async fillUntilContiguous(): Promise<void> {
    while (!this.closed && (this.catchUpAsked || this.pending.size > 0)) {
      const asked = this.catchUpAsked;
      const joinsBefore = this.joinsCaughtUp;
      this.catchUpAsked = false;
      const before = this.lastSeq;
      try {
        await this.fetchEverythingAfter();
      } catch (error) {
        if (this.joinsCaughtUp === joinsBefore) this.catchUpAsked ||= asked;
        throw error;
      }
      if (this.lastSeq === before && this.pending.size > 0) this.skipUnfillableGap();
    }
  }

  private noLongerBehind(): void {
    if (!this.behind || this.closed) return;
    this.behind = false;
    this.options.caughtUp?.();
  }

  private retryFillLater(): void {
    const delay = this.fillBackoff.next();
    if (this.closed || delay === null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      // A join under way brings what is missing itself; its ack fills the rest.
      if (this.syncing) return;
      this.retrying = true;
      this.fill(false)
        .catch(() => undefined)
        .finally(() => (this.retrying = false));
    }, delay);
  }

  private async fetchEverythingAfter(): Promise<void> {
    let since: number | null = this.lastSeq ?? 0;
    while (since !== null && !this.closed) {
      const page = await this.options.fetchAfter(this.roomId, since, this.closing.signal);
      this.accept(page.items);
      since = page.nextCursor;
    }
  }

  /**
   * The store has nothing for the gap (it cannot happen with gapless seqs, but
   * a stalled feed would be worse than a hole): carry on from the next message held.
   */
  private skipUnfillableGap(): void {
    const next = Math.min(...this.pending.keys());
    // Never backwards: that would deliver again what was delivered.
    this.lastSeq = Math.max(this.lastSeq ?? 0, next - 1);
    this.dropStale();
    this.drain();
  }
}
