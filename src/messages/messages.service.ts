import { inspect } from 'node:util';
import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, MoreThan, Repository } from 'typeorm';
import type { AuthUser } from '@app/auth/auth-user';
import { AppException } from '@app/common/errors/app.exception';
import { DEFAULT_PAGE_SIZE } from '@app/common/pagination/page-query.dto';
import { extractMentions } from '@app/contract/mentions';
import { DeliveryService } from '@app/delivery/delivery.service';
import { MetricsService } from '@app/metrics/metrics.service';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import type { Transport } from '@app/metrics/transport';
import { RoomsService } from '@app/rooms/rooms.service';
import { UsersService } from '@app/users/users.service';
import type { MessageBodyDto } from './dto/send-message.dto';
import { MessageView } from './dto/message.view';
import { MentionLedger } from './mention-ledger';
import { MessageStore } from './message-store.service';
import { Message } from './message.entity';

export interface HistoryRequest {
  since?: number;
  before?: number;
  limit?: number;
}

export interface HistoryPage {
  items: MessageView[];
  nextCursor: number | null;
}

/** Sending and reading messages, on behalf of any transport. */
@Injectable()
export class MessagesService {
  private readonly logger = new Logger(MessagesService.name);
  /** Mention notifications under way: a shutdown waits for them before the database closes. */
  private readonly notifying = new Set<Promise<void>>();

  constructor(
    @InjectRepository(Message) private readonly messages: Repository<Message>,
    private readonly store: MessageStore,
    private readonly rooms: RoomsService,
    private readonly users: UsersService,
    private readonly delivery: DeliveryService,
    private readonly metrics: MetricsService,
    private readonly mentionLedger: MentionLedger,
    shutdown: GracefulShutdown,
  ) {
    // Those of the sends in flight, before the clients they are for are told to go; those of
    // sends that finish later, before the database closes.
    shutdown.register('finish-sends', () => this.notificationsOfFinishedSends());
    shutdown.register('finish-writes', () => this.notificationsUnderWay());
  }

  private async notificationsOfFinishedSends(): Promise<void> {
    await this.store.idle();
    // A finished send starts its notifications once its own continuation has run.
    await new Promise((resolve) => setImmediate(resolve));
    await this.notificationsUnderWay();
  }

  private async notificationsUnderWay(): Promise<void> {
    await Promise.all(this.notifying);
  }

  /**
   * Stores the message, then delivers it to the room and notifies mentioned
   * members. Once committed the send has succeeded: nothing after the commit
   * can fail it. `transport` is what it came over, for the metrics.
   */
  async send(
    sender: AuthUser,
    roomId: string,
    body: MessageBodyDto,
    transport: Transport,
  ): Promise<MessageView> {
    const id =
      this.rooms.knownAccessible(sender.id, roomId) ??
      (await this.rooms.assertAccessible(sender.id, roomId));
    const { message, created } = await this.store.append({
      roomId: id,
      userId: sender.id,
      username: sender.username,
      text: body.text,
      clientMsgId: body.clientMsgId,
    });
    const view = MessageView.from(message);
    // Both also when answered from storage: the attempt that committed it may
    // have stopped before either. Every live path drops a seq it already
    // delivered, and the ledger lets a message's mentions be notified once.
    this.delivery.messageCreated(view);
    this.notifyMentionsInBackground(view);
    if (created) this.metrics.messages.inc({ transport });
    return view;
  }

  async history(reader: AuthUser, roomId: string, request: HistoryRequest): Promise<HistoryPage> {
    const room = await this.rooms.findAccessible(reader.id, roomId);
    return this.page(room.id, request);
  }

  /** A page of a room's messages the caller already has access to. */
  async page(
    roomId: string,
    { since, before, limit = DEFAULT_PAGE_SIZE }: HistoryRequest,
  ): Promise<HistoryPage> {
    if (since !== undefined && before !== undefined) {
      throw AppException.validation('since and before cannot be combined');
    }
    const ascending = since !== undefined;
    const rows = await this.messages.find({
      where: {
        roomId,
        ...(ascending ? { seq: MoreThan(since) } : {}),
        ...(before !== undefined ? { seq: LessThan(before) } : {}),
      },
      order: { seq: ascending ? 'ASC' : 'DESC' },
      take: limit + 1,
    });
    const items = rows.slice(0, limit).map((row) => MessageView.from(row));
    const hasMore = rows.length > limit;
    return { items, nextCursor: hasMore ? items[items.length - 1].seq : null };
  }

  /** After the message's own delivery; a failure loses the notifications, never the send. */
  private notifyMentionsInBackground(message: MessageView): void {
    const names = extractMentions(message.text);
    if (names.length === 0) return;
    const notifying = this.notifyMentions(message, names)
      .catch((error: unknown) =>
        this.logger.warn(
          `Could not notify the mentions of message ${message.id}: ${reasonOf(error)}`,
        ),
      )
      .finally(() => this.notifying.delete(notifying));
    this.notifying.add(notifying);
  }

  private async notifyMentions(message: MessageView, names: string[]): Promise<void> {
    if (!(await this.mentionLedger.claim(message.id))) return;
    let members: string[];
    try {
      const mentioned = await this.users.findActiveByUsernames(names);
      // The sender too, when they name themselves: the contract excepts only non-members and unknown names.
      const candidates = mentioned.map((user) => user.id);
      members = await this.rooms.membersAmong(message.roomId, candidates);
    } catch (error) {
      await this.mentionLedger.release(message.id);
      throw error;
    }
    for (const userId of members) this.delivery.mentioned(userId, message);
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : inspect(error);
}
