import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AppException } from '@app/common/errors/app.exception';
import type { AllConfig } from '@app/config/app-config';
import { isLockWaitCut, isRefusedForItsData } from '@app/database/database-errors';
import { TransactionRunner } from '@app/database/transaction-runner';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { writeBatch, type AppendMessage, type BatchOutcome } from './message-batch';
import type { Message } from './message.entity';
import { RoomWriteQueue } from './room-write-queue';

export type { AppendMessage } from './message-batch';

export interface AppendResult {
  message: Message;
  /** False when `clientMsgId` matched an earlier message, which is returned instead. */
  created: boolean;
}

interface Pending {
  input: AppendMessage;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
  /** When it is refused, unless a write has taken it by then (`performance.now()`). */
  deadline: number;
}

/** The messages one write commits; aborted once the database has not answered in time. */
interface Batch {
  items: Pending[];
  signal: AbortSignal;
  /** `performance.now()` when it went out. */
  startedAt: number;
}

const unanswered = () =>
  AppException.unavailable(
    'The database did not answer in time: the message may have been stored; ' +
      'send it again with the same clientMsgId',
  );

const notTakenInTime = () =>
  AppException.unavailable(
    'The database is not keeping up: this send stored nothing; send it again',
  );

const tooManyWaiting = () =>
  AppException.unavailable(
    'Too many messages are waiting for the database: this send stored nothing; send it again later',
  );

/** How many messages one write commits at most. */
export const MAX_BATCH = 256;

/**
 * How many messages may wait for a write on one node. Behind a database
 * that stalls, sends would otherwise pile up as fast as they come (each
 * holding its text) while every write waits out MESSAGE_WRITE_TIMEOUT_MS.
 * A healthy database takes this many in a few writes.
 */
export const MAX_WAITING_MESSAGES = 10_000;

/** How often messages that waited past their deadline for a write are refused. */
const OVERDUE_SWEEP_MS = 250;

/**
 * On PostgreSQL a second write may start while one is in flight, once this
 * many messages of rooms the first does not hold wait: the database then
 * works on one batch while the next is sent, and a batch that small would
 * cost more per message than it saves.
 */
export const OVERLAP_BATCH = 8;
/**
 * ...or whatever waits, once the write in flight has been out this long: it
 * may wait on a room's row another session holds (a node frozen in a
 * membership change), and other rooms must not wait with it.
 */
const SLOW_WRITE_MS = 250;
const MAX_WRITES_IN_FLIGHT = 2;

/**
 * The only code that writes messages. `append` resolves once the message is
 * committed with its room's next seq: strictly increasing and gapless, since
 * the counter lives on the room row, locked (on every node) by the write
 * that advances it together with the insert (see `writeBatch`). Two writes
 * in flight at once never share a room (see `RoomWriteQueue`), so each room's
 * messages are numbered in the order they were appended, even when a batch
 * fails and is written again message by message.
 *
 * Group commit: messages that arrive in one turn of the event loop, and
 * while a write is in flight, queue and the next write takes them all, so
 * concurrent senders share commits without giving up ack-after-commit.
 */
@Injectable()
export class MessageStore implements OnApplicationShutdown {
  private readonly logger = new Logger(MessageStore.name);
  private readonly pending = new RoomWriteQueue<Pending>();
  /** The writes in flight, and whether each has been out SLOW_WRITE_MS. */
  private readonly writes = new Map<Promise<void>, { slow: boolean }>();
  /** When a write last committed (`performance.now()`). */
  private lastCommitAt = -Infinity;
  /** The start of writes at the end of this turn of the event loop, once scheduled. */
  private soon?: Promise<void>;
  private readonly maxWrites: number;
  private readonly writeTimeoutMs: number;
  /** Refuses overdue messages while any wait. */
  private overdueSweep?: NodeJS.Timeout;

  constructor(
    private readonly transactions: TransactionRunner,
    private readonly shutdown: GracefulShutdown,
    config: ConfigService<AllConfig, true>,
  ) {
    this.maxWrites = transactions.isPostgres ? MAX_WRITES_IN_FLIGHT : 1;
    this.writeTimeoutMs = config.get('messages.writeTimeoutMs', { infer: true });
    shutdown.register('finish-sends', () => this.idle());
  }

  /**
   * Refused once the node is shutting down (the client sends it again to
   * another node), and when the database is too far behind: with
   * MAX_WAITING_MESSAGES waiting already, or when no write has taken it
   * within MESSAGE_WRITE_TIMEOUT_MS. A write that takes it has as long again
   * (see `startWrites`).
   */
  append(input: AppendMessage): Promise<AppendResult> {
    if (this.shutdown.draining)
      return Promise.reject(AppException.unavailable('The server is shutting down'));
    if (this.pending.size >= MAX_WAITING_MESSAGES) return Promise.reject(tooManyWaiting());
    return new Promise((resolve, reject) => {
      const deadline = performance.now() + this.writeTimeoutMs;
      this.pending.push({ input, resolve, reject, deadline });
      this.overdueSweep ??= setInterval(() => this.refuseOverdue(), OVERDUE_SWEEP_MS).unref();
      if (this.writes.size === 0) this.startWritesSoon();
      else this.startWrites();
    });
  }

  /**
   * After the drain: sends still waiting then (behind a database that did
   * not answer in the time the drain had) are told they stored nothing.
   */
  onApplicationShutdown(): void {
    for (const item of this.pending.expire(() => true))
      item.reject(
        AppException.unavailable('The server is shutting down: this send stored nothing'),
      );
    clearInterval(this.overdueSweep);
    this.overdueSweep = undefined;
  }

  /** Messages wait in the order they were appended, so their deadlines come in the same order. */
  private refuseOverdue(): void {
    const now = performance.now();
    for (const item of this.pending.expire((waiting) => waiting.deadline <= now))
      item.reject(notTakenInTime());
    if (this.pending.size > 0) return;
    clearInterval(this.overdueSweep);
    this.overdueSweep = undefined;
  }

  /** Resolves once every write already queued has finished. */
  async idle(): Promise<void> {
    while (this.writes.size > 0 || this.soon) await Promise.all([...this.writes.keys(), this.soon]);
  }

  /**
   * With no write in flight, the first message waits for the rest of this
   * turn of the event loop: every message read from the sockets in it joins
   * the same batch. Otherwise each would commit alone as it arrives (on
   * SQLite synchronously, with a sync to disk each), since nothing else is
   * in flight for later messages to wait behind.
   */
  private startWritesSoon(): void {
    this.soon ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.soon = undefined;
      this.startWrites();
    });
  }

  /**
   * A write the database has not answered within MESSAGE_WRITE_TIMEOUT_MS
   * (a connection that went silent, a server that hangs) is given up on:
   * its senders get UNAVAILABLE, it writes nothing more (a statement
   * under way has its connection closed, and a server still there cancels
   * it, unless it committed just before), its rooms take later messages again,
   * and it no longer counts as in flight. Whether it was stored is unknown;
   * a client sending it again with its clientMsgId gets the stored one back.
   */
  private startWrites(): void {
    while (this.mayStartWrite()) {
      const giveUp = new AbortController();
      const startedAt = performance.now();
      const batch: Batch = {
        items: this.pending.take(MAX_BATCH),
        signal: giveUp.signal,
        startedAt,
      };
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(watchdog);
        clearTimeout(slow);
        this.pending.release(batch.items);
        this.writes.delete(write);
        this.startWrites();
      };
      const watchdog = setTimeout(() => {
        this.logger.warn(
          `A write of ${batch.items.length} messages got no answer within ${this.writeTimeoutMs} ms: given up on`,
        );
        giveUp.abort();
        for (const item of batch.items) item.reject(unanswered());
        this.suspect(batch);
        finish();
      }, this.writeTimeoutMs);
      const state = { slow: false };
      const slow =
        this.maxWrites > 1
          ? setTimeout(() => {
              state.slow = true;
              this.startWrites();
            }, SLOW_WRITE_MS)
          : undefined;
      const write: Promise<void> = this.commit(batch.items, batch).finally(finish);
      this.writes.set(write, state);
    }
  }

  /**
   * A write that waited on a lock while others committed stalled on one of
   * its rooms (another session holds its row): whichever it was, each is
   * written alone from now on, and stalls no other room's messages again. A
   * database that stalls as a whole isolates nothing, and keeps group commit.
   */
  private suspect(batch: Batch): void {
    if (this.lastCommitAt > batch.startedAt) this.pending.isolate(batch.items);
  }

  private mayStartWrite(): boolean {
    const takeable = this.pending.takeable;
    if (this.writes.size === 0) return takeable > 0;
    if (this.writes.size >= this.maxWrites || takeable === 0) return false;
    return takeable >= OVERLAP_BATCH || this.anyWriteSlow();
  }

  /** Asked at every append while a write is in flight: no array made for it. */
  private anyWriteSlow(): boolean {
    for (const write of this.writes.values()) if (write.slow) return true;
    return false;
  }

  private async commit(items: Pending[], batch: Batch): Promise<void> {
    try {
      const outcomes = await writeBatch(
        this.transactions,
        items.map((item) => item.input),
        batch.signal,
      );
      items.forEach((item, i) => settle(item, outcomes[i]));
      if (batch.signal.aborted) return;
      this.lastCommitAt = performance.now();
      // Only a message stored new took its room's row lock: a resend found stored did not.
      this.pending.trust(items.filter((_, i) => isCreated(outcomes[i])));
    } catch (error) {
      if (isLockWaitCut(error)) this.suspect(batch);
      // Given up on (its rooms are others' to write now), or failed in a way that may
      // have come after its commit: written again, messages without a clientMsgId would be stored twice.
      if (batch.signal.aborted || items.length === 1 || !isRefusedForItsData(error)) {
        for (const item of items) item.reject(error);
        return;
      }
      // One bad message must not fail the others: each goes again on its own,
      // unless the batch was given up on meanwhile.
      for (const item of items) if (!batch.signal.aborted) await this.commit([item], batch);
    }
  }
}

function isCreated(outcome: BatchOutcome): boolean {
  return 'created' in outcome && outcome.created;
}

function settle(item: Pending, outcome: BatchOutcome): void {
  if ('error' in outcome) item.reject(outcome.error satisfies AppException);
  else item.resolve(outcome);
}
