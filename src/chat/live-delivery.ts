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
/** Deliveries of an untracked room held while joins read where it stands. */
interface PendingRoom {
  joins: number;
  held: Delivery[];
}

@Injectable()
export class LiveDelivery implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LiveDelivery.name);
  private readonly rooms = new Map<string, RoomOrder>();
  private readonly pending = new Map<string, PendingRoom>();
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

  /**
   * Call before reading the room's lastSeq for a join, and the release it
   * returns once the join is done: until the room is tracked, its messages
   * wait, so that one committed after that read is not handed to no one
   * before the room's order starts. `track` then takes them in order.
   */
  holdUntilTracked(roomId: string): () => void {
    const pending = this.pending.get(roomId) ?? { joins: 0, held: [] };
    pending.joins += 1;
    this.pending.set(roomId, pending);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      pending.joins -= 1;
      if (pending.joins > 0) return;
      this.pending.delete(roomId);
      for (const delivery of pending.held.splice(0)) this.receive(delivery);
    };
  }

  /** Starts ordering a room once it has local subscribers, from the seq they have seen. */
  track(roomId: string, lastSeq: number): void {
    if (this.rooms.has(roomId)) return;
    const order: RoomOrder = { lastSeq, backlog: [], filling: false };
    this.rooms.set(roomId, order);
    const held = this.pending.get(roomId)?.held.splice(0) ?? [];
    for (const delivery of held) this.receive(delivery);
  }

  /** The last seq this node delivered live in the room; undefined while it does not track it. */
  deliveredSeq(roomId: string): number | undefined {
    return this.rooms.get(roomId)?.lastSeq;
  }

  untrack(roomId: string): void {
    this.rooms.delete(roomId);
  }

  private receive(delivery: Delivery): void {
    const roomId =
      delivery.event === ServerEvent.Message ? (delivery.payload as MessageJson).roomId : undefined;
    const order = roomId === undefined ? undefined : this.rooms.get(roomId);
    if (!order) {
      const pending = roomId === undefined ? undefined : this.pending.get(roomId);
      // A join stuck on its reads holds no more than a gap fill brings back.
      if (pending && pending.held.length < MAX_GAP_FILL) pending.held.push(delivery);
      else this.emit(delivery);
      return;
    }
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
