import { assertRemembered } from './admission-age';

describe('assertRemembered', () => {
  afterEach(() => jest.useRealTimers());

  it('passes an admission younger than the memory, and refuses an older one for now', () => {
    jest.useFakeTimers({ now: 0 });
    const startedAt = performance.now();
    jest.advanceTimersByTime(59_999);
    expect(() => assertRemembered(startedAt, 60_000)).not.toThrow();
    jest.advanceTimersByTime(1);
    expect(() => assertRemembered(startedAt, 60_000)).toThrow(
      expect.objectContaining({ code: 'UNAVAILABLE' }),
    );
  });
});
