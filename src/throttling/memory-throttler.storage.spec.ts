import { MemoryThrottlerStorage } from './memory-throttler.storage';

describe('MemoryThrottlerStorage', () => {
  afterEach(() => jest.useRealTimers());

  it('counts hits in a fixed window and starts a new one when it expires', async () => {
    jest.useFakeTimers({ now: 0 });
    const storage = new MemoryThrottlerStorage();
    for (let i = 1; i <= 3; i += 1)
      expect((await storage.increment('k', 1000, 2, 0, 't')).totalHits).toBe(i);
    expect((await storage.increment('other', 1000, 2, 0, 't')).totalHits).toBe(1);
    jest.advanceTimersByTime(1000);
    expect((await storage.increment('k', 1000, 2, 0, 't')).totalHits).toBe(1);
  });

  it('blocks for the block duration once over the limit', async () => {
    jest.useFakeTimers({ now: 0 });
    const storage = new MemoryThrottlerStorage();
    await storage.increment('k', 1000, 1, 5000, 't');
    const over = await storage.increment('k', 1000, 1, 5000, 't');
    expect(over).toMatchObject({ isBlocked: true, timeToBlockExpire: 5 });
    jest.advanceTimersByTime(2000);
    expect((await storage.increment('k', 1000, 1, 5000, 't')).isBlocked).toBe(true);
    jest.advanceTimersByTime(3000);
    expect(await storage.increment('k', 1000, 1, 5000, 't')).toMatchObject({
      isBlocked: false,
      totalHits: 1,
    });
  });

  it('counts nothing while blocked, and starts a new window when a block shorter than it ends', async () => {
    jest.useFakeTimers({ now: 0 });
    const storage = new MemoryThrottlerStorage();
    const hit = () => storage.increment('k', 60_000, 2, 1000, 't');
    for (let i = 0; i < 3; i += 1) await hit();
    for (let i = 0; i < 9; i += 1) {
      jest.advanceTimersByTime(100);
      expect(await hit()).toMatchObject({ isBlocked: true, totalHits: 3 });
    }
    jest.advanceTimersByTime(100);
    expect(await hit()).toMatchObject({ isBlocked: false, totalHits: 1, timeToExpire: 60 });
  });

  it('gives a hit back within the window, and ends a window emptied so', async () => {
    jest.useFakeTimers({ now: 0 });
    const storage = new MemoryThrottlerStorage();
    const hit = () => storage.increment('k', 1000, 2, 0, 't');
    await hit();
    await hit();
    await storage.refund('k', 't');
    expect((await hit()).totalHits).toBe(2);
    await storage.refund('k', 't');
    await storage.refund('k', 't');
    await storage.refund('k', 't');
    jest.advanceTimersByTime(600);
    expect(await hit()).toMatchObject({ totalHits: 1, timeToExpire: 1 });
    jest.advanceTimersByTime(600);
    expect((await hit()).totalHits).toBe(2);
  });

  it('gives nothing back from a blocked window, nor to another key or throttler', async () => {
    jest.useFakeTimers({ now: 0 });
    const storage = new MemoryThrottlerStorage();
    const hit = () => storage.increment('k', 1000, 1, 5000, 't');
    await hit();
    await storage.refund('k', 'other');
    await storage.refund('other', 't');
    expect((await hit()).isBlocked).toBe(true);
    await storage.refund('k', 't');
    expect(await hit()).toMatchObject({ isBlocked: true, totalHits: 2 });
  });

  it('ends a window on time when the wall clock is stepped back', async () => {
    jest.useFakeTimers({ now: 3_600_000 });
    const storage = new MemoryThrottlerStorage();
    await storage.increment('k', 1000, 1, 0, 't');

    jest.setSystemTime(0);
    jest.advanceTimersByTime(1000);

    expect((await storage.increment('k', 1000, 1, 0, 't')).totalHits).toBe(1);
  });
});
