import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { roomNames } from '@app/contract/room-names';
import type { Delivery } from '@app/delivery/delivery.service';
import type { AppServer } from '@app/realtime/socket-data';
import { LiveDelivery } from './live-delivery';

/** Hands every delivery to this node's Socket.IO sockets subscribed to its channel. */
@Injectable()
export class SocketIoDelivery implements OnModuleDestroy {
  private detach?: () => void;

  constructor(private readonly live: LiveDelivery) {}

  attach(server: AppServer): void {
    this.detach?.();
    this.detach = this.live.subscribe((delivery) => this.deliver(server, delivery));
  }

  onModuleDestroy(): void {
    this.detach?.();
  }

  private deliver(
    server: AppServer,
    { channel, event, payload, except, volatile }: Delivery,
  ): void {
    let target = server.local.to(channel);
    if (except?.userId) target = target.except(roomNames.user(except.userId));
    if (except?.connectionId) target = target.except(except.connectionId);
    if (volatile) target = target.volatile;
    (target.emit as (event: string, payload: unknown) => boolean)(event, payload);
  }
}
