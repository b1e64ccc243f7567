import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AppException } from '@app/common/errors/app.exception';
import type { AllConfig } from '@app/config/app-config';
import { DeliveryService, type Delivery } from '@app/delivery/delivery.service';
import { LocalChannels } from '@app/delivery/local-channels';
import { MetricsService } from '@app/metrics/metrics.service';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';

export interface SseSubscriber {
  userId: string;
  receive(delivery: Delivery): void;
  close(): void;
}

/**
 * This node's open event streams: one delivery listener for all of them,
 * a cap per user, and every stream ended on shutdown.
 */
@Injectable()
export class SseHub implements OnModuleInit, OnApplicationShutdown {
  private readonly channels = new LocalChannels<SseSubscriber>();
  private readonly open = new Set<SseSubscriber>();
  private readonly openByUser = new Map<string, number>();
  private detach?: () => void;

  constructor(
    private readonly delivery: DeliveryService,
    private readonly config: ConfigService<AllConfig, true>,
    private readonly metrics: MetricsService,
    shutdown: GracefulShutdown,
  ) {
    shutdown.register('tell-clients', () => this.endAll());
  }

  onModuleInit(): void {
    this.detach = this.delivery.subscribe((delivery) => {
      for (const subscriber of this.channels.subscribers(delivery.channel))
        subscriber.receive(delivery);
    });
  }

  onApplicationShutdown(): void {
    this.detach?.();
  }

  /** Ends every stream: EventSource reconnects, to another node, resuming with Last-Event-ID. */
  private endAll(): void {
    for (const subscriber of [...this.open]) subscriber.close();
  }

  /** Registers a stream on a channel; RATE_LIMITED when the user has too many open. */
  attach(channel: string, subscriber: SseSubscriber): () => void {
    const count = this.openByUser.get(subscriber.userId) ?? 0;
    if (count >= this.config.get('realtime.maxSseStreamsPerUser', { infer: true })) {
      throw AppException.rateLimited('Too many open event streams for this user');
    }
    this.openByUser.set(subscriber.userId, count + 1);
    this.open.add(subscriber);
    this.channels.add(channel, subscriber);
    this.metrics.connections.inc({ transport: 'sse' });
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      this.channels.remove(channel, subscriber);
      this.open.delete(subscriber);
      this.release(subscriber.userId);
      this.metrics.connections.dec({ transport: 'sse' });
    };
  }

  get streamCount(): number {
    return this.open.size;
  }

  get channelCount(): number {
    return this.channels.channelCount;
  }

  private release(userId: string): void {
    const count = (this.openByUser.get(userId) ?? 1) - 1;
    if (count <= 0) this.openByUser.delete(userId);
    else this.openByUser.set(userId, count);
  }
}
