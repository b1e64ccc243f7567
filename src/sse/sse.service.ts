import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Request, Response } from 'express';
import type { AuthUser } from '@app/auth/auth-user';
import type { AllConfig } from '@app/config/app-config';
import { ServerEvent, SseEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import type { Delivery } from '@app/delivery/delivery.service';
import { MessagesService } from '@app/messages/messages.service';
import { RoomsService } from '@app/rooms/rooms.service';
import { RoomFeed } from './room-feed';
import { SseHub, type SseSubscriber } from './sse.hub';
import { SseStream } from './sse-stream';

/** Opens the event streams: the caller's personal stream and a room's feed. */
@Injectable()
export class SseService {
  constructor(
    private readonly hub: SseHub,
    private readonly rooms: RoomsService,
    private readonly messages: MessagesService,
    private readonly config: ConfigService<AllConfig, true>,
  ) {}

  /** `connected`, then every notification of the user. */
  openPersonal(user: AuthUser, request: Request, response: Response): void {
    const stream = new SseStream(response);
    this.attach(user, roomNames.user(user.id), stream, request, (delivery) => {
      if (delivery.event === ServerEvent.Notification)
        void stream.send(delivery.event, delivery.payload);
    });
    stream.open(this.heartbeatMs);
    void stream.send(SseEvent.Connected, { userId: user.id });
  }

  /** Stored messages after `since` (default: none), then live ones, each once and in order. */
  async openRoom(
    user: AuthUser,
    roomId: string,
    since: number | undefined,
    request: Request,
    response: Response,
  ): Promise<void> {
    const room = await this.rooms.findAccessible(user.id, roomId);
    const stream = new SseStream(response);
    const feed = new RoomFeed(
      stream,
      (page) => this.messages.page(room.id, page),
      since ?? room.lastSeq,
    );
    this.attach(user, roomNames.chat(room.id), stream, request, (delivery) => {
      if (delivery.event === ServerEvent.Message) feed.live(delivery.payload as MessageJson);
    });
    stream.open(this.heartbeatMs);
    await feed.replay();
  }

  private attach(
    user: AuthUser,
    channel: string,
    stream: SseStream,
    request: Request,
    receive: (delivery: Delivery) => void,
  ): void {
    const subscriber: SseSubscriber = { userId: user.id, receive, close: () => stream.end() };
    const detach = this.hub.attach(channel, subscriber);
    const closeAt = Math.min(user.tokenExpiresAt - Date.now(), 2 ** 31 - 1);
    // The stream ends with its token; EventSource then reconnects and authenticates again.
    const expiry = setTimeout(() => stream.end(), Math.max(closeAt, 0));
    expiry.unref();
    request.once('close', () => {
      clearTimeout(expiry);
      detach();
      stream.end();
    });
  }

  private get heartbeatMs(): number {
    return this.config.get('realtime.sseHeartbeatMs', { infer: true });
  }
}
