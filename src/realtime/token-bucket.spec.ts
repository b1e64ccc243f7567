import { TokenBucket } from './token-bucket';

describe('TokenBucket', () => {
  afterEach(() => jest.useRealTimers());

  it('allows a burst, then the average rate', () => {
    jest.useFakeTimers({ now: 0 });
    const bucket = new TokenBucket(10, 3);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    jest.advanceTimersByTime(100);
    expect([bucket.take(), bucket.take()]).toEqual([true, false]);
    jest.advanceTimersByTime(9900);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('keeps refilling when the wall clock is stepped back', () => {
    jest.useFakeTimers({ now: 3_600_000 });
    const bucket = new TokenBucket(10, 3);
    for (let i = 0; i < 3; i += 1) bucket.take();

    jest.setSystemTime(0);
    jest.advanceTimersByTime(100);

    expect(bucket.take()).toBe(true);
  });

  it('holds its starting allowance for a while, and refills only up to the burst', () => {
    jest.useFakeTimers({ now: 0 });
    const bucket = new TokenBucket(10, 2, { tokens: 3, forMs: 5000 });
    jest.advanceTimersByTime(1000);
    const taken = Array.from({ length: 6 }, () => bucket.take());
    expect(taken).toEqual([true, true, true, true, true, false]);
    jest.advanceTimersByTime(10_000);
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, false]);
  });

  it('drops what is left of its starting allowance once it expires', () => {
    jest.useFakeTimers({ now: 0 });
    const bucket = new TokenBucket(10, 2, { tokens: 3, forMs: 5000 });
    jest.advanceTimersByTime(5001);
    const taken = Array.from({ length: 4 }, () => bucket.take());
    expect(taken).toEqual([true, true, false, false]);
  });
});
