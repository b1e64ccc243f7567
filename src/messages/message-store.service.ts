import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository, type EntityManager } from 'typeorm';
import { AppException } from '@app/common/errors/app.exception';
import { uuidv7 } from '@app/common/ids/uuid-v7';
import { isUniqueViolation } from '@app/database/database-errors';
import { TransactionRunner } from '@app/database/transaction-runner';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { Message } from './message.entity';

export interface AppendMessage {
  roomId: string;
  userId: string;
  username: string;
  text: string;
  clientMsgId?: string;
}

export interface AppendResult {
  message: Message;
  /** False when `clientMsgId` matched an earlier message, which is returned instead. */
  created: boolean;
}

/** Carries an earlier message with the same clientMsgId out of a transaction it rolls back. */
class DuplicateMessage extends Error {
  constructor(readonly original: Message) {
    super('A message with this clientMsgId exists');
  }
}

/**
 * The only code that writes messages. `append` resolves once the message is
 * committed with the room's next seq: strictly increasing and gapless, because
 * the seq counter lives on the room row, which each writer locks (on every
 * process) and advances in the same transaction as its insert.
 */
@Injectable()
export class MessageStore {
  private readonly inFlight = new Set<Promise<AppendResult>>();

  constructor(
    @InjectRepository(Message) private readonly messages: Repository<Message>,
    private readonly transactions: TransactionRunner,
    shutdown: GracefulShutdown,
  ) {
    shutdown.register('finish-writes', () => this.idle());
  }

  /** Resolves when the message is committed (or the retry matched an earlier one). */
  append(input: AppendMessage): Promise<AppendResult> {
    const write = this.write(input);
    this.inFlight.add(write);
    const forget = () => this.inFlight.delete(write);
    write.then(forget, forget);
    return write;
  }

  /** Resolves once every write already started has finished. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  private async write(input: AppendMessage): Promise<AppendResult> {
    const earlier = await this.findByClientMsgId(this.messages.manager, input);
    if (earlier) return { message: earlier, created: false };
    try {
      const message = await this.transactions.run((manager) => this.insertNext(manager, input));
      return { message, created: true };
    } catch (error) {
      if (error instanceof DuplicateMessage) return { message: error.original, created: false };
      if (input.clientMsgId && isUniqueViolation(error)) {
        const original = await this.findByClientMsgId(this.messages.manager, input);
        if (original) return { message: original, created: false };
      }
      throw error;
    }
  }

  private async insertNext(manager: EntityManager, input: AppendMessage): Promise<Message> {
    const seq = await this.advanceSeq(manager, input.roomId);
    // Checked again under the room lock: a racing retry may have committed meanwhile.
    const earlier = await this.findByClientMsgId(manager, input);
    if (earlier) throw new DuplicateMessage(earlier);
    const message = manager.create(Message, {
      id: uuidv7(),
      roomId: input.roomId,
      seq,
      userId: input.userId,
      username: input.username,
      text: input.text,
      clientMsgId: input.clientMsgId ?? null,
      createdAt: new Date(),
    });
    await manager.insert(Message, message);
    return message;
  }

  /** Locks the room row until commit and returns its next seq. */
  private async advanceSeq(manager: EntityManager, roomId: string): Promise<number> {
    const [sql, parameters] = manager.connection.driver.escapeQueryWithParameters(
      'UPDATE rooms SET last_seq = last_seq + 1 WHERE id = :roomId RETURNING last_seq',
      { roomId },
    );
    const result = await manager.queryRunner!.query(sql, parameters, true);
    const row = (result.records as Array<{ last_seq: number | string }>)[0];
    if (!row) throw AppException.notFound('Room not found');
    return Number(row.last_seq);
  }

  private findByClientMsgId(manager: EntityManager, input: AppendMessage): Promise<Message | null> {
    if (!input.clientMsgId) return Promise.resolve(null);
    return manager.findOneBy(Message, {
      roomId: input.roomId,
      userId: input.userId,
      clientMsgId: input.clientMsgId,
    });
  }
}
