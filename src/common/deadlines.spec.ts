import { Deadlines } from './deadlines';

describe('Deadlines', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  function deadlines() {
    const expired: string[] = [];
    return { expired, at: new Deadlines<string>((item) => expired.push(item), 1_000) };
  }

  it('expires each item once its deadline has passed, at most one slot late and never early', () => {
    const { expired, at } = deadlines();
    at.add('a', 1_000_200);
    at.add('b', 1_000_900);
    at.add('c', 1_001_100);

    jest.advanceTimersByTime(199);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(801);
    expect(expired).toEqual(['a', 'b']);
    jest.advanceTimersByTime(1_000);
    expect(expired).toEqual(['a', 'b', 'c']);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('shares one timer among the items of a slot, and drops it with the last of them', () => {
    const { expired, at } = deadlines();
    for (let i = 0; i < 100; i += 1) at.add(`item ${i}`, 1_000_500);
    expect(jest.getTimerCount()).toBe(1);

    for (let i = 0; i < 100; i += 1) at.remove(`item ${i}`, 1_000_500);

    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(5_000);
    expect(expired).toEqual([]);
  });

  it('moves an item to a later deadline: it expires then, and its old slot holds no timer', () => {
    const { expired, at } = deadlines();
    at.add('a', 1_000_500);
    at.move('a', 1_000_500, 1_005_500);
    expect(jest.getTimerCount()).toBe(1);

    jest.advanceTimersByTime(5_000);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(1_000);
    expect(expired).toEqual(['a']);
  });

  it('expires on the next turn an item whose deadline has passed already', () => {
    const { expired, at } = deadlines();
    at.add('late', 999_000);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(0);
    expect(expired).toEqual(['late']);
  });

  it('keeps the others of a slot when one is removed', () => {
    const { expired, at } = deadlines();
    at.add('stays', 1_000_500);
    at.add('goes', 1_000_500);
    at.remove('goes', 1_000_500);
    jest.advanceTimersByTime(1_000);
    expect(expired).toEqual(['stays']);
  });

  it('waits past the longest delay Node allows (about 24.8 days) without expiring early', () => {
    const { expired, at } = deadlines();
    const day = 24 * 60 * 60 * 1000;
    at.add('month', 1_000_000 + 30 * day);

    jest.advanceTimersByTime(29 * day);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(day);
    expect(expired).toEqual(['month']);
  });
});
