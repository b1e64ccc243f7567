import { Injectable } from '@nestjs/common';
import type { HealthIndicatorFunction } from '@nestjs/terminus';

/**
 * Modules register their dependencies here (the database, Redis) so that
 * readiness covers them without the health module knowing each one. A check
 * must answer in bounded time, and keep at most one probe waiting on a
 * dependency that does not answer: readiness is public and unthrottled.
 */
@Injectable()
export class ReadinessChecks {
  private readonly checks: HealthIndicatorFunction[] = [];

  register(check: HealthIndicatorFunction): void {
    this.checks.push(check);
  }

  all(): HealthIndicatorFunction[] {
    return [...this.checks];
  }
}
