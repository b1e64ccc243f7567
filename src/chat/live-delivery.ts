import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ServerEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import {
  DeliveryService,
  type Delivery,
  type DeliveryListener,
} from '@app/delivery/delivery.service';
import { MessagesService } from '@app/messages/messages.service';

/** Larger gaps are left to the clients, who see the jump in seq and page the rest over REST. */
export const MAX_GAP_FILL = 1000;

interface RoomOrder {
  lastSeq: number;
  /** Deliveries waiting while a gap is filled from storage. */
  backlog: Delivery[];
  filling: boolean;
}

/**
 * Deliveries for the connection transports (Socket.IO, raw WebSocket), with
 * each room's messages in seq order. Messages committed on several nodes can
 * reach a node out of order; a message that skips ahead first brings in the
 * ones before it from storage (they are committed: a seq is only taken after
 * the previous one is), and a message already delivered is dropped.
 */
@Injectable()
export class LiveDelivery implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LiveDelivery.name);
  private readonly rooms = new Map<string, RoomOrder>();
  private readonly listeners = new Set<DeliveryListener>();
  private detach?: () => void;

  constructor(
    private readonly delivery: DeliveryService,
    private readonly messages: MessagesService,
  ) {}

  onModuleInit(): void {
    this.detach = this.delivery.subscribe((delivery) => this.receive(delivery));
  }

  onApplicationShutdown(): void {
    this.detach?.();
  }

  subscribe(listener: DeliveryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts ordering a room once it has local subscribers, from the seq they have seen. */
  track(roomId: string, lastSeq: number): void {
    if (!this.rooms.has(roomId)) this.rooms.set(roomId, { lastSeq, backlog: [], filling: false });
  }

  /** The last seq this node delivered live in the room; undefined while it does not track it. */
  deliveredSeq(roomId: string): number | undefined {
    return this.rooms.get(roomId)?.lastSeq;
  }

  untrack(roomId: string): void {
    this.rooms.delete(roomId);
  }

  private receive(delivery: Delivery): void {
    const order =
      delivery.event === ServerEvent.Message
        ? this.rooms.get((delivery.payload as MessageJson).roomId)
        : undefined;
    if (!order) return this.emit(delivery);
    if (order.filling) {
      order.backlog.push(delivery);
      return;
    }
    this.inOrder(order, delivery);
  }

  private inOrder(order: RoomOrder, delivery: Delivery): void {
    const message = delivery.payload as MessageJson;
    if (message.seq <= order.lastSeq) return;
    if (message.seq === order.lastSeq + 1 || message.seq - order.lastSeq - 1 > MAX_GAP_FILL) {
      order.lastSeq = message.seq;
      return this.emit(delivery);
    }
    order.filling = true;
    order.backlog.unshift(delivery);
    void this.fill(order, message);
  }

  private async fill(order: RoomOrder, next: MessageJson): Promise<void> {
    const stored = await this.storedBetween(order.lastSeq, next);
    order.filling = false;
    const backlog = order.backlog.splice(0);
    if (this.rooms.get(next.roomId) !== order) {
      // The room was untracked meanwhile (and maybe tracked anew): its current state decides.
      for (const delivery of backlog) this.receive(delivery);
      return;
    }
    for (const message of stored ?? []) {
      if (message.seq <= order.lastSeq || message.seq >= next.seq) continue;
      order.lastSeq = message.seq;
      this.emit({
        channel: roomNames.chat(next.roomId),
        event: ServerEvent.Message,
        payload: message,
      });
    }
    // Whatever storage gave (nothing, when it failed), move on: a seq is only
    // taken once the one before it is committed, so what storage lacks now
    // never comes; clients see the jump in seq and recover it themselves.
    order.lastSeq = Math.max(order.lastSeq, next.seq - 1);
    for (const delivery of backlog) {
      if (order.filling) order.backlog.push(delivery);
      else this.inOrder(order, delivery);
    }
  }

  /** The stored messages after `lastSeq` and before `next`; undefined when storage failed. */
  private async storedBetween(
    lastSeq: number,
    next: MessageJson,
  ): Promise<MessageJson[] | undefined> {
    try {
      const page = await this.messages.page(next.roomId, {
        since: lastSeq,
        limit: next.seq - lastSeq - 1,
      });
      return page.items;
    } catch (error) {
      this.logger.warn(
        `Could not fill a gap before seq ${next.seq} in room ${next.roomId}: ${(error as Error).message}`,
      );
      return undefined;
    }
  }

  private emit(delivery: Delivery): void {
    for (const listener of this.listeners) listener(delivery);
  }
}
