import type { IncomingMessage } from 'node:http';
import { AppException } from '@app/common/errors/app.exception';
import type { RateLimitService } from '@app/throttling/rate-limit.service';
import { SessionBudget } from './session-budget';

/** A budget of `limit` attempts for the whole test, whatever the address. */
function budgetOf(limit: number) {
  let spent = 0;
  const rateLimits = {
    consume: () => {
      spent += 1;
      return spent > limit
        ? Promise.reject(AppException.rateLimited('Rate limited'))
        : Promise.resolve();
    },
  } as unknown as RateLimitService;
  const budget = new SessionBudget(rateLimits, () => false);
  return { budget, spent: () => spent };
}

const request = () =>
  ({ headers: {}, socket: { remoteAddress: '203.0.113.9' } }) as IncomingMessage;

describe('SessionBudget', () => {
  it('spends once for a session and its first namespace connect, again for each later connect', async () => {
    const { budget, spent } = budgetOf(10);
    const session = request();

    await budget.spendOnNewSession(session);
    await budget.admitConnect(session);
    expect(spent()).toBe(1);
    await budget.admitConnect(session);
    await budget.admitConnect(session);
    expect(spent()).toBe(3);
  });

  it("opens a session over the budget, then refuses its connects with the budget's error", async () => {
    const { budget } = budgetOf(1);
    const within = request();
    const over = request();

    await budget.spendOnNewSession(within);
    await budget.spendOnNewSession(over);

    expect(budget.isRefused(within)).toBe(false);
    expect(budget.isRefused(over)).toBe(true);
    await expect(budget.admitConnect(over)).rejects.toMatchObject({ message: 'Rate limited' });
    await expect(budget.admitConnect(within)).resolves.toBeUndefined();
  });
});
