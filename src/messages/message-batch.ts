import type { TransactionRunner } from '@app/database/transaction-runner';
import type { AppendMessage, BatchOutcome } from './batch-plan';
import { writeOnPostgres } from './postgres-batch';
import { writeOnSqlite } from './sqlite-batch';

export type { AppendMessage, BatchOutcome } from './batch-plan';

/**
 * Writes a batch of messages and resolves once it is committed. A retry whose
 * clientMsgId is already stored (or earlier in the batch) gets the original;
 * the rest get their rooms' next seqs, gapless, or NOT_FOUND for a room that
 * does not exist or is private and the sender no longer a member, as judged
 * when it is written (a removal may have come after the send was let in). Once `signal` is aborted (the batch was given up on),
 * nothing more is written: a statement already sent may still commit.
 */
export function writeBatch(
  transactions: TransactionRunner,
  items: AppendMessage[],
  signal?: AbortSignal,
): Promise<BatchOutcome[]> {
  return transactions.isPostgres
    ? writeOnPostgres(transactions, items, signal)
    : writeOnSqlite(transactions, items, signal);
}
