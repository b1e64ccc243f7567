import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ExpiringCache } from '@app/common/expiring-cache';
import { DeliveryEffectKind, DeliveryService } from '@app/delivery/delivery.service';

/** Far longer than a connection takes to open; one that takes longer is refused (`assertRemembered`). */
export const CLOSURE_MEMORY_MS = 60_000;

/**
 * Accounts closed lately, on any node, as this node heard of them: for the
 * connections being opened at that moment, authenticated before the closure
 * and registered after it, which the delivery that closes the others missed.
 */
@Injectable()
export class AccountClosures implements OnModuleInit, OnApplicationShutdown {
  private count = 0;
  private readonly closed = new ExpiringCache<number>(CLOSURE_MEMORY_MS, 100_000);
  private detach?: () => void;

  constructor(private readonly delivery: DeliveryService) {}

  onModuleInit(): void {
    this.detach = this.delivery.watchArrivals(({ effect }) => {
      if (effect?.kind === DeliveryEffectKind.Disconnect) this.record(effect.userId);
    });
  }

  onApplicationShutdown(): void {
    this.detach?.();
  }

  /** A point in the closures this node has heard of, for `closedSince`. */
  mark(): number {
    return this.count;
  }

  closedSince(mark: number, userId: string): boolean {
    return (this.closed.get(userId) ?? 0) > mark;
  }

  private record(userId: string): void {
    this.count += 1;
    this.closed.set(userId, this.count);
  }
}
