import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { ServerEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import {
  DeliveryService,
  type Delivery,
  type DeliveryEffect,
  type Listening,
} from '@app/delivery/delivery.service';
import { SlowConsumerWatch } from '@app/realtime/slow-consumers';
import type { AppServer, AppSocket } from '@app/realtime/socket-data';
import { LiveDelivery } from './live-delivery';

/**
 * A socket rejoining with `since` gets the missed messages in its join ack,
 * read from storage. Until the ack is out its live messages are held back;
 * after it, live messages up to the last missed one are skipped for it, as
 * this node's live stream may still be behind what storage already showed.
 */
export interface Fence {
  /** Live messages held back while the join runs; undefined once the ack is out. */
  held?: MessageJson[];
  /** The last seq the socket already has. */
  floor: number;
  /** Where the join's answer left the socket, once known: the fence is released from there. */
  releaseAt?: number;
}

export type EffectHandler = (socket: AppSocket, effect: DeliveryEffect) => void;

/**
 * Hands every delivery to this node's Socket.IO sockets subscribed to its
 * channel, so that each socket sees a room's messages exactly once, in seq
 * order, also across a rejoin with `since`.
 */
@Injectable()
export class SocketIoDelivery implements OnApplicationShutdown {
  private detach?: () => void;
  private dropAudience?: () => void;
  /** channel → socketId → fence */
  private readonly fences = new Map<string, Map<string, Fence>>();

  constructor(
    private readonly live: LiveDelivery,
    private readonly slowConsumers: SlowConsumerWatch,
    private readonly delivery: DeliveryService,
  ) {}

  /** `applyEffect` runs for each local socket a delivery with an effect reached. */
  attach(server: AppServer, applyEffect: EffectHandler): void {
    this.onApplicationShutdown();
    this.detach = this.live.subscribe((delivery) => {
      this.deliver(server, delivery);
      if (delivery.effect)
        this.forEachSocket(server, delivery.channel, delivery.effect, applyEffect);
    });
    this.dropAudience = this.delivery.addAudience(() => audienceOf(server));
  }

  onApplicationShutdown(): void {
    this.detach?.();
    this.dropAudience?.();
  }

  /**
   * Starts holding back the socket's live messages of the room; `release` takes
   * the fence. Joins of one room on one socket take turns (`InSocketOrder`), so
   * the fence an earlier join made has been released, or is released here.
   */
  fence(socket: AppSocket, roomId: string): Fence {
    const channel = roomNames.chat(roomId);
    this.releaseAnswered(socket, roomId);
    const fenced = this.fences.get(channel) ?? new Map<string, Fence>();
    const fence: Fence = { held: [], floor: Number.POSITIVE_INFINITY };
    fenced.set(socket.id, fence);
    this.fences.set(channel, fenced);
    return fence;
  }

  /**
   * Releases the fence from `lastSeq` once the join's ack has gone out (it is
   * sent once the handler's promise settles), or earlier, when the next join
   * of the room asks where the socket stands.
   */
  releaseAfterAck(socket: AppSocket, roomId: string, lastSeq: number, fence: Fence): void {
    fence.releaseAt = lastSeq;
    setImmediate(() => {
      if (fence.held) this.release(socket, roomId, lastSeq, fence);
    });
  }

  /**
   * Called once the join ack is out: sends what was held back after `lastSeq`
   * (the last message the socket already has), and keeps skipping live
   * messages up to `lastSeq` until this node's live stream has passed it.
   * A fence the socket has dropped since (it left, perhaps to rejoin) is not
   * the one to release.
   */
  release(socket: AppSocket, roomId: string, lastSeq: number, fence: Fence): void {
    const channel = roomNames.chat(roomId);
    if (this.fences.get(channel)?.get(socket.id) !== fence) return;
    const held = fence.held ?? [];
    fence.held = undefined;
    fence.floor = lastSeq;
    for (const message of held) {
      if (message.seq > lastSeq && socket.connected) socket.emit(ServerEvent.Message, message);
    }
    const caughtUp = (this.live.deliveredSeq(roomId) ?? Number.POSITIVE_INFINITY) >= lastSeq;
    if (caughtUp || !socket.connected) this.unfence(channel, socket.id);
  }

  /**
   * The last seq of the room the socket has been sent live, or is counted as
   * having by a join whose fence still skips up to it.
   */
  liveSeqOf(socket: AppSocket, roomId: string): number | undefined {
    this.releaseAnswered(socket, roomId);
    const delivered = this.live.deliveredSeq(roomId);
    const floor = this.fences.get(roomNames.chat(roomId))?.get(socket.id)?.floor;
    if (floor === undefined || !Number.isFinite(floor)) return delivered;
    return Math.max(delivered ?? floor, floor);
  }

  /** The fence of a join that has answered, released now rather than on its turn. */
  private releaseAnswered(socket: AppSocket, roomId: string): void {
    const fence = this.fences.get(roomNames.chat(roomId))?.get(socket.id);
    if (fence?.held && fence.releaseAt !== undefined)
      this.release(socket, roomId, fence.releaseAt, fence);
  }

  /** Drops the socket's fences: of one room when it leaves it, of all when it disconnects. */
  forget(socket: AppSocket, roomId?: string): void {
    const channels = roomId === undefined ? [...this.fences.keys()] : [roomNames.chat(roomId)];
    for (const channel of channels) this.unfence(channel, socket.id);
  }

  private deliver(server: AppServer, { channel, event, payload, except }: Delivery): void {
    const fenced = event === ServerEvent.Message ? this.fences.get(channel) : undefined;
    // Rooms followed only over /ws or SSE here: no packet to encode for Socket.IO.
    if (!fenced && !server.sockets.adapter.rooms.has(channel)) return;
    let target = server.local.to(channel);
    if (fenced) target = target.except(this.fencedOff(channel, fenced, payload as MessageJson));
    if (except?.connectionId) target = target.except(except.connectionId);
    (target.emit as (event: string, payload: unknown) => boolean)(event, payload);
    this.slowConsumers.sent(channel);
  }

  private forEachSocket(
    server: AppServer,
    channel: string,
    effect: DeliveryEffect,
    applyEffect: EffectHandler,
  ): void {
    const socketIds = [...(server.sockets.adapter.rooms.get(channel) ?? [])];
    for (const socketId of socketIds) {
      const socket = server.sockets.sockets.get(socketId);
      if (socket) applyEffect(socket, effect);
    }
  }

  /** The sockets that must not get this message now; fences the live stream has passed go. */
  private fencedOff(channel: string, fenced: Map<string, Fence>, message: MessageJson): string[] {
    const skipped: string[] = [];
    for (const [socketId, fence] of fenced) {
      if (fence.held) {
        fence.held.push(message);
        skipped.push(socketId);
      } else if (message.seq <= fence.floor) {
        skipped.push(socketId);
      } else {
        this.unfence(channel, socketId);
      }
    }
    return skipped;
  }

  private unfence(channel: string, socketId: string): void {
    const fenced = this.fences.get(channel);
    fenced?.delete(socketId);
    if (fenced?.size === 0) this.fences.delete(channel);
  }
}

/** Every channel each local socket is in, with its user. */
function* audienceOf(server: AppServer): Iterable<Listening> {
  for (const [channel, socketIds] of server.sockets.adapter.rooms) {
    for (const socketId of socketIds) {
      const user = server.sockets.sockets.get(socketId)?.data.user;
      if (user) yield { userId: user.id, channel };
    }
  }
}
