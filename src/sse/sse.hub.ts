import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { roomNames } from '@app/contract/room-names';
import {
  DeliveryEffectKind,
  DeliveryService,
  type Delivery,
  type DeliveryEffect,
} from '@app/delivery/delivery.service';
import { LocalChannels } from '@app/delivery/local-channels';
import { MetricsService } from '@app/metrics/metrics.service';
import { Transport } from '@app/metrics/transport';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { RoomsService } from '@app/rooms/rooms.service';
import { EventStreamSlots } from './event-stream-slots';

export interface SseSubscriber {
  userId: string;
  channel: string;
  /** `payloadJson` serializes the payload once for every stream that asks. */
  receive(delivery: Delivery, payloadJson: () => string): void;
  /** Ends the stream, which detaches it. */
  close(): void;
  /** A room's stream: storage holds the room's messages up to `lastSeq`. */
  catchUp?(lastSeq: number): void;
}

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

  constructor(
    private readonly delivery: DeliveryService,
    private readonly slots: EventStreamSlots,
    private readonly metrics: MetricsService,
    private readonly shutdown: GracefulShutdown,
    private readonly rooms: RoomsService,
  ) {
    shutdown.register('tell-clients', () => this.endAll());
  }

  onModuleInit(): void {
    this.detach = this.delivery.subscribe((delivery) => this.deliver(delivery));
    this.dropAudience = this.delivery.addAudience(() => this.open);
    this.detachResynced = this.delivery.onResynced(() => void this.catchUpRoomStreams());
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

  /** While the node drains, a new stream is opened and ended at once (see `SseService`). */
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

  /** EventSource reconnects to a closed stream: it then gets 404 for a room it left, 401 without an account. */
  private apply(effect: DeliveryEffect): void {
    for (const subscriber of this.streamsEndedBy(effect)) subscriber.close();
  }

  private streamsEndedBy(effect: DeliveryEffect): SseSubscriber[] {
    const streams = [...this.streamsByUser.subscribers(effect.userId)];
    if (effect.kind === DeliveryEffectKind.Disconnect) return streams;
    const room = roomNames.chat(effect.roomId);
    return streams.filter((stream) => stream.channel === room);
  }

  /**
   * After this node was out of touch with the others, room streams read
   * what they missed from storage at once: their clients have no reason to
   * reconnect, and the room's next message may be long in coming.
   */
  private async catchUpRoomStreams(): Promise<void> {
    const streams = [...this.open].filter((stream) => stream.catchUp !== undefined);
    const roomIds = new Set(streams.map((stream) => roomNames.roomIdOf(stream.channel)!));
    if (roomIds.size === 0) return;
    let lastSeqs: Map<string, number>;
    try {
      lastSeqs = await this.rooms.lastSeqsOf([...roomIds]);
    } catch (error) {
      // The rooms' next messages bring in the gaps instead.
      this.logger.warn(`Could not catch up event streams: ${(error as Error).message}`);
      return;
    }
    for (const stream of streams) {
      const lastSeq = lastSeqs.get(roomNames.roomIdOf(stream.channel)!);
      if (lastSeq !== undefined && this.open.has(stream)) stream.catchUp!(lastSeq);
    }
  }

  /** Ends every stream: EventSource reconnects, to another node, resuming with Last-Event-ID. */
  private endAll(): void {
    for (const subscriber of [...this.open]) subscriber.close();
  }
}

function serializedOnce(payload: unknown): () => string {
  let json: string | undefined;
  return () => (json ??= JSON.stringify(payload));
}
