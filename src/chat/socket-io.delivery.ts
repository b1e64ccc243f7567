import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { ServerEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import type { Delivery } from '@app/delivery/delivery.service';
import type { AppServer, AppSocket } from '@app/realtime/socket-data';
import { LiveDelivery } from './live-delivery';

/**
 * Hands every delivery to this node's Socket.IO sockets subscribed to its
 * channel. A socket rejoining with `since` is fenced: its live messages wait
 * until the join ack (with the missed ones) is out, and only those after the
 * last missed one follow, so that it sees each message exactly once.
 */
@Injectable()
export class SocketIoDelivery implements OnModuleDestroy {
  private detach?: () => void;
  /** channel → socketId → live messages held back during the socket's join */
  private readonly fences = new Map<string, Map<string, MessageJson[]>>();

  constructor(private readonly live: LiveDelivery) {}

  attach(server: AppServer): void {
    this.detach?.();
    this.detach = this.live.subscribe((delivery) => this.deliver(server, delivery));
  }

  onModuleDestroy(): void {
    this.detach?.();
  }

  /** Starts holding back the socket's live messages of the channel. */
  fence(socket: AppSocket, channel: string): void {
    const fenced = this.fences.get(channel) ?? new Map<string, MessageJson[]>();
    fenced.set(socket.id, []);
    this.fences.set(channel, fenced);
  }

  /** Sends what was held back, after `lastSeq` (the last message the socket already has). */
  release(socket: AppSocket, channel: string, lastSeq: number): void {
    const fenced = this.fences.get(channel);
    const held = fenced?.get(socket.id) ?? [];
    fenced?.delete(socket.id);
    if (fenced?.size === 0) this.fences.delete(channel);
    for (const message of held) {
      if (message.seq > lastSeq && socket.connected) socket.emit(ServerEvent.Message, message);
    }
  }

  private deliver(server: AppServer, { channel, event, payload, except }: Delivery): void {
    let target = server.local.to(channel);
    const fenced = event === ServerEvent.Message ? this.fences.get(channel) : undefined;
    if (fenced) {
      for (const held of fenced.values()) held.push(payload as MessageJson);
      target = target.except([...fenced.keys()]);
    }
    if (except?.connectionId) target = target.except(except.connectionId);
    (target.emit as (event: string, payload: unknown) => boolean)(event, payload);
  }
}
