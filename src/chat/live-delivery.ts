import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ServerEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import {
  DeliveryService,
  type Delivery,
  type DeliveryListener,
} from '@app/delivery/delivery.service';
import { CoalescedRuns } from '@app/common/coalesced-runs';
import { reasonOf } from '@app/common/errors/reason-of';
import { MessagesService } from '@app/messages/messages.service';
import { RoomsService } from '@app/rooms/rooms.service';

/** Larger gaps are left to the clients, who see the jump in seq and page the rest over REST. */
export const MAX_GAP_FILL = 1000;

interface RoomOrder {
  lastSeq: number;
  /** Deliveries waiting while a gap is filled from storage. */
  backlog: Delivery[];
  filling: boolean;
  /** Storage's last seq, when a resync asked for a catch-up while a fill ran: it follows that fill. */
  catchUpTo?: number;
}

/** A read of stored messages: those after `since`, at most `limit`, all before `next` when given. */
interface StoredRead {
  since: number;
  limit: number;
  next?: number;
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
  private readonly catchUps = new CoalescedRuns(() => this.catchUpRoomsBehind());

  constructor(
    private readonly delivery: DeliveryService,
    private readonly messages: MessagesService,
    private readonly storedRooms: RoomsService,
  ) {}

  onModuleInit(): void {
    this.detach = this.delivery.subscribe((delivery) => this.receive(delivery));
    this.detachResynced = this.delivery.onResynced(() => {
      this.catchUps.request().catch((error: Error) => {
        this.logger.error(`Catching up after a resync failed: ${error.message}`);
      });
    });
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
    const order: RoomOrder = { lastSeq, backlog: [], filling: false };
    this.rooms.set(roomId, order);
    const held = this.pending.get(roomId)?.held.splice(0) ?? [];
    for (const delivery of held) this.receive(delivery);
  }

  /** The last seq this node delivered live in the room; undefined while it does not track it. */
  deliveredSeq(roomId: string): number | undefined {
    return this.rooms.get(roomId)?.lastSeq;
  }

  /**
   * Stops ordering a room its last local subscriber left, unless a join of it
   * is under way: that join counts the seq this order has reached, and an
   * order started again from the seq it read would forget what was
   * delivered meanwhile (its joiner would miss that message live).
   */
  untrackUnlessJoining(roomId: string): void {
    if ((this.pending.get(roomId)?.joins ?? 0) === 0) this.rooms.delete(roomId);
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
    const next = message.seq;
    // Nothing awaits the fill: a listener failing while it delivers is logged, not left unhandled.
    this.fill(message.roomId, order, {
      since: order.lastSeq,
      limit: next - order.lastSeq - 1,
      next,
    }).catch((error: unknown) =>
      this.logger.error(
        `Delivering a gap fill in room ${message.roomId} failed: ${reasonOf(error)}`,
      ),
    );
  }

  /**
   * Each room followed here that storage has more of reads what it missed,
   * one room after another (resyncs that come meanwhile share one more round).
   */
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
      const upTo = stored.get(roomId) ?? 0;
      if (upTo > order.lastSeq) await this.catchUp(roomId, order, upTo);
    }
  }

  private async catchUp(roomId: string, order: RoomOrder, upTo: number): Promise<void> {
    if (this.rooms.get(roomId) !== order) return;
    if (order.filling) {
      order.catchUpTo = Math.max(order.catchUpTo ?? 0, upTo);
      return;
    }
    await this.fill(roomId, order, catchUpRead(order, upTo));
  }

  /**
   * Delivers the stored messages of the read (before `next`, a live message
   * waiting at the head of the backlog, when it is a gap's), then the
   * backlog, then a catch-up asked for meanwhile.
   */
  private async fill(roomId: string, order: RoomOrder, read: StoredRead): Promise<void> {
    order.filling = true;
    const stored = await this.storedAfter(roomId, read);
    order.filling = false;
    const backlog = order.backlog.splice(0);
    if (this.rooms.get(roomId) !== order) {
      // The room was untracked meanwhile (and maybe tracked anew): its current state decides.
      for (const delivery of backlog) this.receive(delivery);
      return;
    }
    for (const message of stored ?? []) {
      if (message.seq <= order.lastSeq || (read.next !== undefined && message.seq >= read.next))
        continue;
      order.lastSeq = message.seq;
      this.emit({ channel: roomNames.chat(roomId), event: ServerEvent.Message, payload: message });
    }
    // Whatever storage gave (nothing, when it failed), move on: a seq is only
    // taken once the one before it is committed, so what storage lacks now
    // never comes; clients see the jump in seq and recover it themselves.
    if (read.next !== undefined) order.lastSeq = Math.max(order.lastSeq, read.next - 1);
    for (const delivery of backlog) {
      if (order.filling) order.backlog.push(delivery);
      else this.inOrder(order, delivery);
    }
    const upTo = order.catchUpTo;
    if (upTo === undefined || order.filling) return;
    order.catchUpTo = undefined;
    if (upTo > order.lastSeq) await this.fill(roomId, order, catchUpRead(order, upTo));
  }

  /** The stored messages of the read; undefined when storage failed. */
  private async storedAfter(roomId: string, read: StoredRead): Promise<MessageJson[] | undefined> {
    try {
      return (await this.messages.page(roomId, { since: read.since, limit: read.limit })).items;
    } catch (error) {
      const what = read.next === undefined ? 'catch up' : `fill a gap before seq ${read.next}`;
      this.logger.warn(`Could not ${what} in room ${roomId}: ${(error as Error).message}`);
      return undefined;
    }
  }

  private emit(delivery: Delivery): void {
    for (const listener of this.listeners) listener(delivery);
  }
}

/**
 * What a room catches up on: the messages up to storage's last seq, or, past
 * MAX_GAP_FILL of them, the last one alone, as a live message that skips so
 * far ahead goes out: clients see the jump and page the rest over REST.
 */
function catchUpRead(order: RoomOrder, upTo: number): StoredRead {
  const missed = upTo - order.lastSeq;
  return missed > MAX_GAP_FILL
    ? { since: upTo - 1, limit: 1 }
    : { since: order.lastSeq, limit: missed };
}
