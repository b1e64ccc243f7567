import { Backoff, type BackoffClock } from './backoff';

function clock(randoms: number[] = [], start = 0): BackoffClock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    random: () => randoms.shift() ?? 0.5,
    advance: (ms) => (now += ms),
  };
}

describe('Backoff (full jitter)', () => {
  const options = { baseMs: 1_000, capMs: 30_000, maxRetries: 10, stableAfterMs: 5_000 };

  it('draws every delay in [0, min(cap, base × 2^n)]', () => {
    const ceilings = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000];
    for (const [edge, expected] of [
      [0, () => 0],
      [0.999_999_9, (ceiling: number) => ceiling],
    ] as const) {
      const backoff = new Backoff(options, clock(ceilings.map(() => edge)));
      const delays = ceilings.map(() => backoff.next());
      expect(delays).toEqual(ceilings.map((ceiling) => expected(ceiling)));
    }
  });

  it('stays within the bounds for random draws', () => {
    const backoff = new Backoff(options);
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const delay = backoff.next() as number;
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(Math.min(30_000, 1_000 * 2 ** attempt));
    }
  });

  it('never exceeds the cap, however many attempts', () => {
    const backoff = new Backoff(
      { ...options, maxRetries: Infinity },
      clock(Array(200).fill(0.999_999)),
    );
    const delays = Array.from({ length: 200 }, () => backoff.next() as number);
    expect(Math.max(...delays)).toBeLessThanOrEqual(30_000);
    expect(delays.every(Number.isFinite)).toBe(true);
  });

  it('gives up after maxRetries', () => {
    const backoff = new Backoff({ ...options, maxRetries: 3 });
    expect([backoff.next(), backoff.next(), backoff.next()].every((d) => d !== null)).toBe(true);
    expect(backoff.next()).toBeNull();
  });

  it('starts over after a connection that stayed up for stableAfterMs', () => {
    const time = clock(Array(20).fill(0.999_999));
    const backoff = new Backoff(options, time);
    backoff.next();
    backoff.next();
    backoff.next();
    backoff.connected();
    time.advance(5_000);
    backoff.disconnected();
    expect(backoff.attempt).toBe(0);
    expect(backoff.next()).toBe(1_000);
  });

  it('keeps counting after a connection that dropped quickly', () => {
    const time = clock(Array(20).fill(0.999_999));
    const backoff = new Backoff(options, time);
    backoff.next();
    backoff.next();
    backoff.connected();
    time.advance(4_999);
    backoff.disconnected();
    expect(backoff.attempt).toBe(2);
    expect(backoff.next()).toBe(4_000);
  });

  it('reset() starts over', () => {
    const backoff = new Backoff(options, clock([0.999_999, 0.999_999, 0.999_999]));
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(1_000);
  });
});
