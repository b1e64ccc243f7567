import { Global, Module, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { AllConfig } from '@app/config/app-config';
import { ReadinessChecks } from '@app/health/readiness-checks';
import { MetricsService } from '@app/metrics/metrics.service';
import { RedisService } from './redis.service';

const PING_TIMEOUT_MS = 1_000;

/** Redis connections for scale-out; idle when REDIS_URL is not set. */
@Global()
@Module({ providers: [RedisService], exports: [RedisService] })
export class RedisModule implements OnModuleInit {
  constructor(
    private readonly redis: RedisService,
    private readonly readiness: ReadinessChecks,
    private readonly indicators: HealthIndicatorService,
    private readonly metrics: MetricsService,
    private readonly config: ConfigService<AllConfig, true>,
  ) {}

  /**
   * Redis in readiness, unless configured out: an outage of Redis itself is
   * every node's at once, and a balancer that routes on readiness alone would
   * then have no node to send new clients to, though each serves its own
   * (README: what leaving it out costs).
   */
  onModuleInit(): void {
    if (!this.redis.enabled) return;
    this.metrics.watchRedis(() => this.redis.ready);
    if (!this.config.get('redis.requiredForReadiness', { infer: true })) return;
    this.readiness.register(async () => {
      const indicator = this.indicators.check('redis');
      // Both connections: without its subscriber a node gets nothing from the others.
      if (!this.redis.ready) return indicator.down({ message: 'Not connected' });
      try {
        await this.redis.ping(PING_TIMEOUT_MS);
        return indicator.up();
      } catch {
        // The client's words may name hosts; readiness is public.
        return indicator.down({ message: 'Redis did not answer' });
      }
    });
  }
}
