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
import { RoomsService } from '@app/rooms/rooms.service';

/** Larger gaps are left to the clients, who see the jump in seq and page the rest over REST. */
export const MAX_GAP_FILL = 1000;

interface RoomOrder {
  lastSeq: number;
  /** Deliveries waiting while a gap is filled from storage. */
  backlog: Delivery[];
  filling: boolean;
  /** A resync asked for a catch-up while a fill ran: it follows that fill. */
  catchUpDue: boolean;
}

/** Deliveries of an untracked room held while joins read where it stands. */
interface PendingRoom {
  joins: number;
  held: Delivery[];
}

/**
 * Deliveries for the connection transports (Socket.IO, raw WebSocket), with
 * each room's messages in seq order. Messages committed on several nodes can
 * reach a node out of order; a message that skips ahead first brings in the
 * ones before it from storage (they are committed: a seq is only taken after
 * the previous one is), and a message already delivered is dropped. After
 * the node was out of touch with the others, every room it follows is read
 * back from storage at once, without waiting for the room's next message.
 */
@Injectable()
export class LiveDelivery implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LiveDelivery.name);
  private readonly rooms = new Map<string, RoomOrder>();
  private readonly pending = new Map<string, PendingRoom>();
  private readonly listeners = new Set<DeliveryListener>();
  private detach?: () => void;
  private detachResynced?: () => void;
  /** The rooms' catch-up after a resync, and whether another resync came meanwhile. */
  private catchingUp?: Promise<void>;
  private catchUpAgain = false;

  constructor(
    private readonly delivery: DeliveryService,
    private readonly messages: MessagesService,
    private readonly storedRooms: RoomsService,
  ) {}

  onModuleInit(): void {
    this.detach = this.delivery.subscribe((delivery) => this.receive(delivery));
    this.detachResynced = this.delivery.onResynced(() => void this.catchUpAll());
  }

  onApplicationShutdown(): void {
    this.detach?.();
    this.detachResynced?.();
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
    const order: RoomOrder = { lastSeq, backlog: [], filling: false, catchUpDue: false };
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
    order.backlog.unshift(delivery);
    void this.fill(message.roomId, order, message.seq);
  }

  /**
   * Each room followed here that storage has more of reads what it missed,
   * one room after another. Resyncs that come meanwhile share one more round.
   */
  private async catchUpAll(): Promise<void> {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = (async () => {
      do {
        this.catchUpAgain = false;
        await this.catchUpRoomsBehind();
      } while (this.catchUpAgain);
    })();
    await this.catchingUp;
    this.catchingUp = undefined;
  }

  private async catchUpRoomsBehind(): Promise<void> {
    const rooms = [...this.rooms];
    let stored: Map<string, number>;
    try {
      stored = await this.storedRooms.lastSeqsOf(rooms.map(([roomId]) => roomId));
    } catch (error) {
      // The rooms' next messages show the gaps instead, as before the resync.
      this.logger.warn(`Could not catch up after a resync: ${(error as Error).message}`);
      return;
    }
    for (const [roomId, order] of rooms) {
      if ((stored.get(roomId) ?? 0) > order.lastSeq) await this.catchUp(roomId, order);
    }
  }

  private async catchUp(roomId: string, order: RoomOrder): Promise<void> {
    if (this.rooms.get(roomId) !== order) return;
    if (order.filling) {
      order.catchUpDue = true;
      return;
    }
    await this.fill(roomId, order, undefined);
  }

  /**
   * Delivers the stored messages after the room's last seq, before `next`
   * (a live message waiting at the head of the backlog), or, without it,
   * up to MAX_GAP_FILL of them; then the backlog.
   */
  private async fill(roomId: string, order: RoomOrder, next: number | undefined): Promise<void> {
    order.filling = true;
    const limit = next === undefined ? MAX_GAP_FILL : next - order.lastSeq - 1;
    const stored = await this.storedAfter(roomId, order.lastSeq, limit, next);
    order.filling = false;
    const backlog = order.backlog.splice(0);
    if (this.rooms.get(roomId) !== order) {
      // The room was untracked meanwhile (and maybe tracked anew): its current state decides.
      for (const delivery of backlog) this.receive(delivery);
      return;
    }
    for (const message of stored ?? []) {
      if (message.seq <= order.lastSeq || (next !== undefined && message.seq >= next)) continue;
      order.lastSeq = message.seq;
      this.emit({ channel: roomNames.chat(roomId), event: ServerEvent.Message, payload: message });
    }
    // Whatever storage gave (nothing, when it failed), move on: a seq is only
    // taken once the one before it is committed, so what storage lacks now
    // never comes; clients see the jump in seq and recover it themselves.
    if (next !== undefined) order.lastSeq = Math.max(order.lastSeq, next - 1);
    for (const delivery of backlog) {
      if (order.filling) order.backlog.push(delivery);
      else this.inOrder(order, delivery);
    }
    if (order.catchUpDue && !order.filling) {
      order.catchUpDue = false;
      await this.fill(roomId, order, undefined);
    }
  }

  /** Up to `limit` stored messages after `lastSeq`; undefined when storage failed. */
  private async storedAfter(
    roomId: string,
    lastSeq: number,
    limit: number,
    next: number | undefined,
  ): Promise<MessageJson[] | undefined> {
    try {
      return (await this.messages.page(roomId, { since: lastSeq, limit })).items;
    } catch (error) {
      const what = next === undefined ? 'catch up' : `fill a gap before seq ${next}`;
      this.logger.warn(`Could not ${what} in room ${roomId}: ${(error as Error).message}`);
      return undefined;
    }
  }

  private emit(delivery: Delivery): void {
    for (const listener of this.listeners) listener(delivery);
  }
}
