import { whenTokenExpires } from './token-expiry';

describe('whenTokenExpires', () => {
  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  const day = 24 * 60 * 60 * 1000;

  it('waits past the longest delay Node allows (about 24.8 days) without expiring early', () => {
    const expire = jest.fn();
    whenTokenExpires(30 * day, expire);

    jest.advanceTimersByTime(30 * day - 1);
    expect(expire).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(expire).toHaveBeenCalledTimes(1);
  });

  it('expires on the next turn a token that has expired already, unless cancelled', () => {
    const expire = jest.fn();
    const cancelled = jest.fn();
    whenTokenExpires(-1, expire);
    whenTokenExpires(-1, cancelled)();

    jest.advanceTimersByTime(0);

    expect(expire).toHaveBeenCalledTimes(1);
    expect(cancelled).not.toHaveBeenCalled();
  });
});
