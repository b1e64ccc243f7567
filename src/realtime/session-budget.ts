import type { IncomingMessage } from 'node:http';
import type { RateLimitService } from '@app/throttling/rate-limit.service';
import { clientBudgetKey, type TrustRule } from './client-address';

/** Enough for a client over the budget to connect to a namespace and be told why it is refused. */
export const REFUSED_SESSION_GRACE_MS = 5_000;

/**
 * The per-address connection budget on Socket.IO, spent when an Engine.IO
 * session is created: a session costs memory for up to `connectTimeout`
 * even if it never connects to a namespace. One spend covers the session's
 * first namespace connect; each further connect in the session spends again.
 * A session over the budget is opened anyway, so that its namespace connect
 * can be refused with the contract's error, and closed soon after.
 */
export class SessionBudget {
  private readonly refusals = new WeakMap<IncomingMessage, unknown>();
  private readonly connected = new WeakSet<IncomingMessage>();

  constructor(
    private readonly rateLimits: RateLimitService,
    private readonly trust: TrustRule,
  ) {}

  /** For Engine.IO's `allowRequest`, which runs once per new session. */
  async spendOnNewSession(request: IncomingMessage): Promise<void> {
    try {
      await this.spend(request);
    } catch (refusal) {
      this.refusals.set(request, refusal);
    }
  }

  isRefused(request: IncomingMessage): boolean {
    return this.refusals.has(request);
  }

  /** Throws the session's refusal; spends for a namespace connect after the session's first. */
  async admitConnect(request: IncomingMessage): Promise<void> {
    if (this.refusals.has(request)) throw this.refusals.get(request);
    if (!this.connected.has(request)) {
      this.connected.add(request);
      return;
    }
    await this.spend(request);
  }

  private spend(request: IncomingMessage): Promise<void> {
    return this.rateLimits.consume('connect', clientBudgetKey(request, this.trust));
  }
}
