import { ExpiringCache } from './expiring-cache';

describe('ExpiringCache', () => {
  afterEach(() => jest.useRealTimers());

  it('forgets entries after their lifetime', () => {
    jest.useFakeTimers({ now: 1_000 });
    const cache = new ExpiringCache<boolean>(100, 10);
    cache.set('a', false);
    expect(cache.get('a')).toBe(false);
    jest.advanceTimersByTime(99);
    expect(cache.get('a')).toBe(false);
    jest.advanceTimersByTime(1);
    expect(cache.get('a')).toBeUndefined();
  });

  it('keeps entries for their lifetime when the wall clock is stepped forward', () => {
    jest.useFakeTimers({ now: 1_000 });
    const cache = new ExpiringCache<boolean>(100, 10);
    cache.set('a', true);
    jest.setSystemTime(3_600_000);
    expect(cache.get('a')).toBe(true);
  });

  it('drops the oldest entry when full, and forgets on delete', () => {
    const cache = new ExpiringCache<number>(60_000, 2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([undefined, 2, 3]);
    cache.delete('b');
    expect(cache.get('b')).toBeUndefined();
  });

  it('drops, when full, the entry set longest ago, not one set again since', () => {
    const cache = new ExpiringCache<number>(60_000, 3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 10);
    cache.set('c', 3);
    cache.set('d', 4);
    expect(['a', 'b', 'c', 'd'].map((key) => cache.get(key))).toEqual([10, undefined, 3, 4]);
  });
});
