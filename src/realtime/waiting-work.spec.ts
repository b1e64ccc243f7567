import { WaitingWork } from './waiting-work';

describe('WaitingWork', () => {
  it('takes a first task whatever its size, then refuses what would pass the limit', () => {
    const waiting = new WaitingWork<object>(2000);
    const [one, other] = [{}, {}];
    expect(waiting.admit(one, 5000)).toBe(5000);
    expect(waiting.admit(one, 1)).toBeUndefined();
    // Each connection counts alone.
    expect(waiting.admit(other, 1400)).toBe(1400);
    expect(waiting.admit(other, 400)).toBe(512);
    expect(waiting.admit(other, 100)).toBeUndefined();
  });

  it('takes more once what waited has started', () => {
    const waiting = new WaitingWork<object>(2000);
    const connection = {};
    const first = waiting.admit(connection, 1500)!;
    expect(waiting.admit(connection, 1000)).toBeUndefined();
    waiting.release(connection, first);
    expect(waiting.admit(connection, 1000)).toBe(1000);
    expect(waiting.admit(connection, 1000)).toBe(1000);
    expect(waiting.admit(connection, 1)).toBeUndefined();
  });
});
