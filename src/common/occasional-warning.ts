import type { Logger } from '@nestjs/common';

/**
 * A warning about something that can come in floods (messages no node
 * sent): logged at most once per interval, with how many came meanwhile.
 */
export class OccasionalWarning {
  private count = 0;
  private warnedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 60_000,
  ) {}

  /** `describe` gets how many times it came since the last warning, this one included. */
  note(describe: (count: number) => string): void {
    this.count += 1;
    const now = performance.now();
    if (now < this.warnedAt + this.intervalMs) return;
    this.logger.warn(describe(this.count));
    this.warnedAt = now;
    this.count = 0;
  }
}
