import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Response } from 'express';
import type { AuthUser } from '@app/auth/auth-user';
import { Deadlines } from '@app/common/deadlines';
import { AppException } from '@app/common/errors/app.exception';
import type { ErrorBody } from '@app/common/errors/error-body';
import type { AllConfig } from '@app/config/app-config';
import { ServerEvent, SseEvent } from '@app/contract/events';
import type { MessageJson, RoomStreamConnected, StreamConnected } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import { MessagesService, type HistoryPage } from '@app/messages/messages.service';
import { resumePoint } from '@app/messages/seq';
import { MetricsService } from '@app/metrics/metrics.service';
import { Transport } from '@app/metrics/transport';
import { RoomsService, type Admission } from '@app/rooms/rooms.service';
import { RoomFeed, type PageReader } from './room-feed';
import { SseHub, shuttingDown, type SseSubscriber } from './sse.hub';
import { SseStream, type SseBacklogLimit } from './sse-stream';

/** The shortest a stream's backlog may go without emptying before its client counts as gone. */
const MIN_STALL_MS = 30_000;

const NOTHING_MORE: HistoryPage = { items: [], nextCursor: null };

/** Opens the event streams: the caller's personal stream and a room's feed. */
@Injectable()
export class SseService {
  constructor(
    private readonly hub: SseHub,
    private readonly rooms: RoomsService,
    private readonly messages: MessagesService,
    private readonly config: ConfigService<AllConfig, true>,
    metrics: MetricsService,
  ) {
    this.backlogLimit = {
      bytes: config.get('realtime.slowConsumerLimitBytes', { infer: true }),
      // Two heartbeats, and never so short that a slow link taking a replay's page counts.
      stalledAfterMs: Math.max(2 * this.heartbeatMs, MIN_STALL_MS),
      onOverflow: () => metrics.slowConsumersDropped.inc({ transport: Transport.Sse }),
    };
  }

  private readonly backlogLimit: SseBacklogLimit;
  /** A stream ends with its token; its client opens another with a fresh one. */
  private readonly tokenExpiries = new Deadlines<SseStream>((stream) =>
    stream.end(AppException.tokenExpired().toBody()),
  );

  /**
   * `connected`, then every notification of the user. `confirmAccount`
   * throws if the account was closed since it was authenticated.
   */
  async openPersonal(
    user: AuthUser,
    confirmAccount: () => void,
    response: Response,
  ): Promise<void> {
    const stream = new SseStream(response, this.backlogLimit);
    await this.start(
      user,
      stream,
      {
        channel: roomNames.user(user.id),
        receive: (delivery, payloadJson) => {
          if (delivery.event === ServerEvent.Notification)
            stream.sendJson(delivery.event, payloadJson());
        },
      },
      confirmAccount,
      () => {
        const connected: StreamConnected = { userId: user.id };
        stream.send(SseEvent.Connected, connected);
      },
    );
  }

  /**
   * `connected` with the resume point as its id, then the stored messages
   * after `since` (default: none), then live ones, each once and in order.
   */
  async openRoom(
    user: AuthUser,
    confirmAccount: () => void,
    roomId: string,
    since: number | undefined,
    response: Response,
  ): Promise<void> {
    const admission = await this.rooms.admit(user.id, roomId);
    const { room, confirm } = admission;
    const stream = new SseStream(response, this.backlogLimit);
    const start = resumePoint(since ?? room.lastSeq, room.lastSeq);
    const feed = new RoomFeed(stream, this.pageReader(admission), start);
    const started = await this.start(
      user,
      stream,
      {
        channel: roomNames.chat(room.id),
        receive: (delivery, payloadJson) => {
          if (delivery.event === ServerEvent.Message)
            feed.live(delivery.payload as MessageJson, payloadJson());
        },
        feed,
        membersOnly: room.isPrivate,
      },
      () => {
        confirmAccount();
        confirm();
      },
      () => sendRoomConnected(stream, { userId: user.id, roomId: room.id, since: start }),
    );
    if (started) await feed.replay();
  }

  /**
   * The room's stored messages, as its stream reads them. A removal seen here
   * while a resync holds deliveries ends the stream once they go out; what
   * storage holds is not the user's to read meanwhile.
   */
  private pageReader({ room, removedMeanwhile }: Admission): PageReader {
    return async (page) => {
      const read = await this.messages.page(room.id, page);
      return room.isPrivate && removedMeanwhile() ? NOTHING_MORE : read;
    };
  }

  /**
   * Registers the stream until it ends and opens it; false when the client
   * left while it was being authorized, the room looked up or its slot
   * reserved. UNAVAILABLE when the node drains, with `Retry-After: 1`: a
   * browser's EventSource gets that as a stream telling it to come back in
   * a second or two (to another node), as the controller's filter answers
   * it, and other clients the status. `confirm` throws when the account or the access checked before
   * was lost meanwhile; from it to the registration nothing waits, so no
   * closure or removal falls in between. `greet` writes the stream's first
   * event, before anything delivered to it can be.
   */
  private async start(
    user: AuthUser,
    stream: SseStream,
    listening: Pick<SseSubscriber, 'channel' | 'receive' | 'feed' | 'membersOnly'>,
    confirm: () => void,
    greet: () => void = () => undefined,
  ): Promise<boolean> {
    if (stream.closed) return false;
    if (stream.headOnly) {
      this.answerHead(stream);
      return false;
    }
    if (this.hub.draining) throw shuttingDown();
    const slot = await this.hub.reserve(user.id);
    if (stream.closed || this.hub.draining) {
      slot.release();
      if (stream.closed) return false;
      throw shuttingDown();
    }
    try {
      confirm();
    } catch (error) {
      slot.release();
      throw error;
    }
    const close = (reason: ErrorBody) => stream.end(reason);
    stream.onEnd(this.hub.attach({ ...listening, userId: user.id, close }, slot));
    stream.open(this.heartbeatMs);
    greet();
    this.tokenExpiries.add(stream, user.tokenExpiresAt);
    stream.onEnd(() => this.tokenExpiries.remove(stream, user.tokenExpiresAt));
    return true;
  }

  /** The answer to HEAD, which has no body to stream. */
  private answerHead(stream: SseStream): void {
    stream.open(this.heartbeatMs);
    stream.end();
  }

  private get heartbeatMs(): number {
    return this.config.get('realtime.sseHeartbeatMs', { infer: true });
  }
}

/**
 * The id makes an EventSource that reconnects before any message arrived
 * resume from here (with Last-Event-ID) instead of from the room's end then.
 */
function sendRoomConnected(stream: SseStream, event: RoomStreamConnected): void {
  stream.send(SseEvent.Connected, event, event.since);
}
