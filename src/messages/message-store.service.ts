import { Injectable } from '@nestjs/common';
import type { AppException } from '@app/common/errors/app.exception';
import { isUnavailableError } from '@app/common/errors/to-error-body';
import { TransactionRunner } from '@app/database/transaction-runner';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { writeBatch, type AppendMessage, type BatchOutcome } from './message-batch';
import type { Message } from './message.entity';

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
}

/** How many messages one write commits at most. */
export const MAX_BATCH = 256;

/**
 * The only code that writes messages. `append` resolves once the message is
 * committed with its room's next seq: strictly increasing and gapless, since
 * the counter lives on the room row, locked (on every node) by the write
 * that advances it together with the insert (see `writeBatch`).
 *
 * Group commit: while one write is in flight, new messages queue and the
 * next write takes them all, so concurrent senders share commits without
 * giving up ack-after-commit.
 */
@Injectable()
export class MessageStore {
  private queue: Pending[] = [];
  private flushing?: Promise<void>;

  constructor(
    private readonly transactions: TransactionRunner,
    shutdown: GracefulShutdown,
  ) {
    shutdown.register('finish-writes', () => this.idle());
  }

  append(input: AppendMessage): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Resolves once every write already queued has finished. */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        await this.commit(batch);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    try {
      const outcomes = await writeBatch(
        this.transactions,
        batch.map((item) => item.input),
      );
      batch.forEach((item, i) => settle(item, outcomes[i]));
    } catch (error) {
      if (batch.length === 1 || isUnavailableError(error)) {
        for (const item of batch) item.reject(error);
        return;
      }
      // One bad message must not fail the others: each goes again on its own.
      for (const item of batch) await this.commit([item]);
    }
  }
}

function settle(item: Pending, outcome: BatchOutcome): void {
  if ('error' in outcome) item.reject(outcome.error satisfies AppException);
  else item.resolve(outcome);
}
