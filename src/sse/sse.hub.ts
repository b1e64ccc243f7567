import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { CoalescedRuns } from '@app/common/coalesced-runs';
import { AppException } from '@app/common/errors/app.exception';
import type { ErrorBody } from '@app/common/errors/error-body';
import { roomNames } from '@app/contract/room-names';
import {
  DeliveryEffectKind,
  DeliveryService,
  type Delivery,
  type DeliveryEffect,
} from '@app/delivery/delivery.service';
import { LocalChannels } from '@app/delivery/local-channels';
import { MessagesService, type HistoryPage } from '@app/messages/messages.service';
import { MetricsService } from '@app/metrics/metrics.service';
import { Transport } from '@app/metrics/transport';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { RoomsService } from '@app/rooms/rooms.service';
import { EventStreamSlots } from './event-stream-slots';
import type { RoomFeed } from './room-feed';

export interface SseSubscriber {
  userId: string;
  channel: string;
  /** `payloadJson` serializes the payload once for every stream that asks. */
  receive(delivery: Delivery, payloadJson: () => string): void;
  /** Ends the stream, telling the client why, which detaches it. */
  close(reason: ErrorBody): void;
  /** A room's stream: its feed, which catch-ups after a resync go through too. */
  feed?: RoomFeed;
  /** A private room's stream, which ends with its user's membership; anyone may read a public room. */
  membersOnly?: boolean;
}

/** A catch-up reads at most this many messages for a room; a stream further behind reads the rest itself. */
const MAX_CATCH_UP = 1000;

/** One of a user's event-stream slots, held until released (at most once). */
export interface StreamSlot {
  release(): void;
}

/**
 * This node's open event streams: one delivery listener for all of them,
 * a cap per user over all nodes, and every stream ended on shutdown or when
 * its user's access ends.
 */
@Injectable()
export class SseHub implements OnModuleInit, OnApplicationShutdown {
  private readonly channels = new LocalChannels<SseSubscriber>();
  /** The same bookkeeping keyed by user id, for the effects on a user. */
  private readonly streamsByUser = new LocalChannels<SseSubscriber>();
  private readonly open = new Set<SseSubscriber>();
  private readonly logger = new Logger(SseHub.name);
  private detach?: () => void;
  private dropAudience?: () => void;
  private detachResynced?: () => void;
  private readonly catchUps = new CoalescedRuns(() => this.catchUpRoomStreams());

  constructor(
    private readonly delivery: DeliveryService,
    private readonly slots: EventStreamSlots,
    private readonly metrics: MetricsService,
    private readonly shutdown: GracefulShutdown,
    private readonly rooms: RoomsService,
    private readonly messages: MessagesService,
  ) {
    shutdown.register('tell-clients', () => this.endAll());
  }

  onModuleInit(): void {
    this.detach = this.delivery.subscribe((delivery) => this.deliver(delivery));
    this.dropAudience = this.delivery.addAudience(() => this.open);
    this.detachResynced = this.delivery.onResynced(() => {
      this.catchUps.request().catch((error: Error) => {
        this.logger.error(`Catching up event streams failed: ${error.message}`);
      });
    });
  }

  onApplicationShutdown(): void {
    this.detach?.();
    this.dropAudience?.();
    this.detachResynced?.();
  }

  /** One of the user's slots, counted over all nodes with Redis; RATE_LIMITED when all are taken. */
  async reserve(userId: string): Promise<StreamSlot> {
    const id = randomUUID();
    await this.slots.acquire(userId, id);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.slots.release(userId, id);
      },
    };
  }

  /** Registers a stream on its channel, in the slot reserved for it, until the detach it returns. */
  attach(subscriber: SseSubscriber, slot: StreamSlot): () => void {
    const { userId, channel } = subscriber;
    this.streamsByUser.add(userId, subscriber);
    this.open.add(subscriber);
    this.channels.add(channel, subscriber);
    this.metrics.connections.inc({ transport: Transport.Sse });
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      this.channels.remove(channel, subscriber);
      this.open.delete(subscriber);
      this.streamsByUser.remove(userId, subscriber);
      slot.release();
      this.metrics.connections.dec({ transport: Transport.Sse });
    };
  }

  /** While the node drains, a new stream is refused UNAVAILABLE (see `SseService`). */
  get draining(): boolean {
    return this.shutdown.draining;
  }

  get streamCount(): number {
    return this.open.size;
  }

  get channelCount(): number {
    return this.channels.channelCount;
  }

  /** The event first, so that a removal reaches the personal stream before the room streams it ends. */
  private deliver(delivery: Delivery): void {
    const subscribers = this.channels.subscribers(delivery.channel);
    if (subscribers.size > 0) {
      const payloadJson = serializedOnce(delivery.payload);
      for (const subscriber of subscribers) subscriber.receive(delivery, payloadJson);
    }
    if (delivery.effect) this.apply(delivery.effect);
  }

  /** A stream told why it ended; a new one would get 404 for a private room left, 401 without an account. */
  private apply(effect: DeliveryEffect): void {
    const reason = endReasonOf(effect);
    for (const subscriber of this.streamsEndedBy(effect)) subscriber.close(reason);
  }

  private streamsEndedBy(effect: DeliveryEffect): SseSubscriber[] {
    const streams = [...this.streamsByUser.subscribers(effect.userId)];
    if (effect.kind === DeliveryEffectKind.Disconnect) return streams;
    const room = roomNames.chat(effect.roomId);
    return streams.filter((stream) => stream.channel === room && stream.membersOnly);
  }

  /**
   * After this node was out of touch with the others, room streams get what
   * they missed from storage at once: their clients have no reason to
   * reconnect, and the room's next message may be long in coming. One room
   * after another (resyncs that come meanwhile share one more round).
   */
  private async catchUpRoomStreams(): Promise<void> {
    const rooms = this.roomsStreamed();
    if (rooms.size === 0) return;
    let lastSeqs: Map<string, number>;
    try {
      lastSeqs = await this.rooms.lastSeqsOf([...rooms]);
    } catch (error) {
      // The rooms' next messages bring in the gaps instead.
      this.logger.warn(`Could not catch up event streams: ${(error as Error).message}`);
      return;
    }
    for (const roomId of rooms) {
      const upTo = lastSeqs.get(roomId);
      const feeds = this.feedsOf(roomId);
      if (upTo !== undefined && feeds.length > 0) await this.catchUpRoom(roomId, feeds, upTo);
    }
  }

  /** The rooms that have a stream open here now. */
  private roomsStreamed(): Set<string> {
    const rooms = new Set<string>();
    for (const { channel, feed } of this.open) {
      const roomId = roomNames.roomIdOf(channel);
      if (feed && roomId !== undefined) rooms.add(roomId);
    }
    return rooms;
  }

  /** The feeds of the room's streams open now. */
  private feedsOf(roomId: string): RoomFeed[] {
    const feeds: RoomFeed[] = [];
    for (const { feed } of this.channels.subscribers(roomNames.chat(roomId))) {
      if (feed) feeds.push(feed);
    }
    return feeds;
  }

  /**
   * One read for the streams of the room that are behind, from the one
   * furthest behind but at most MAX_CATCH_UP messages back: each takes what
   * it lacks of it, and one further behind reads the rest itself.
   */
  private async catchUpRoom(roomId: string, feeds: RoomFeed[], upTo: number): Promise<void> {
    // One still in its first replay reads storage itself, from where it got to, once done.
    const behind = feeds.filter((feed) => feed.position < upTo && !feed.readAgainUpTo(upTo));
    if (behind.length === 0) return;
    const furthest = Math.min(...behind.map((feed) => feed.position));
    const since = Math.max(furthest, upTo - MAX_CATCH_UP);
    let page: HistoryPage;
    try {
      page = await this.messages.page(roomId, { since, limit: upTo - since });
    } catch (error) {
      this.logger.warn(`Could not catch up room ${roomId}: ${(error as Error).message}`);
      return;
    }
    for (const feed of behind) feed.catchUpWith(page.items);
  }

  /** Ends every stream: EventSource reconnects, to another node, resuming with Last-Event-ID. */
  private endAll(): void {
    const reason = shuttingDown().toBody();
    for (const subscriber of [...this.open]) subscriber.close(reason);
  }
}

/** Refuses a stream, or ends one, on a node that shuts down: its client comes back to another. */
export function shuttingDown(): AppException {
  return AppException.unavailable('The server is shutting down: connect again', 1);
}

/** A private room its user no longer belongs to is not there for them, as a new stream would find. */
function endReasonOf(effect: DeliveryEffect): ErrorBody {
  if (effect.kind === DeliveryEffectKind.Disconnect) return AppException.accountDeleted().toBody();
  return AppException.notFound('Room not found').toBody();
}

function serializedOnce(payload: unknown): () => string {
  let json: string | undefined;
  return () => (json ??= JSON.stringify(payload));
}
