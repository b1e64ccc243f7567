import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AppException } from '@app/common/errors/app.exception';
import type { AllConfig } from '@app/config/app-config';

/** Counts each user's open live connections, on every transport, to cap them. */
@Injectable()
export class ConnectionTracker {
  private readonly openByUser = new Map<string, number>();

  constructor(private readonly config: ConfigService<AllConfig, true>) {}

  /** Reserves a connection slot for the user; RATE_LIMITED when all are taken. */
  acquire(userId: string): void {
    const open = this.openByUser.get(userId) ?? 0;
    if (open >= this.config.get('realtime.maxSocketsPerUser', { infer: true })) {
      throw AppException.rateLimited('Too many open connections for this user');
    }
    this.openByUser.set(userId, open + 1);
  }

  release(userId: string): void {
    const open = (this.openByUser.get(userId) ?? 1) - 1;
    if (open <= 0) this.openByUser.delete(userId);
    else this.openByUser.set(userId, open);
  }

  get total(): number {
    let total = 0;
    for (const open of this.openByUser.values()) total += open;
    return total;
  }
}
