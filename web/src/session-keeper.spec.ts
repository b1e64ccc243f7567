import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ChatError, ErrorCode, type RestClient } from '../../client/src';
import type { Session } from './session';
import { SessionKeeper } from './session-keeper';

const session = (expiresInMs: number): Session => ({
  token: 't0',
  userId: 'u1',
  username: 'kim',
  expiresAt: Date.now() + expiresInMs,
});

function keeperWith(answers: Array<() => Promise<{ accessToken: string; expiresIn: number }>>) {
  const asked: number[] = [];
  const refreshed: Session[] = [];
  const ended: string[] = [];
  const tokens: string[] = [];
  const rest = {
    refresh: (token: string) => {
      asked.push(Date.now());
      tokens.push(token);
      return answers.shift()!();
    },
  } as unknown as RestClient;
  const keeper = new SessionKeeper(
    rest,
    (s) => refreshed.push(s),
    (m) => ended.push(m),
  );
  return { keeper, asked, tokens, refreshed, ended };
}

const issued = (token: string) => () => Promise.resolve({ accessToken: token, expiresIn: 60 });
const failing = (code: ErrorCode) => () =>
  Promise.reject(new ChatError({ code, message: code, details: [] }));

describe('SessionKeeper', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('refreshes halfway through the token’s life, then halfway through the new one’s', async () => {
    const { keeper, asked, refreshed } = keeperWith([issued('t1'), issued('t2')]);
    keeper.start(session(60_000));
    await jest.advanceTimersByTimeAsync(29_999);
    expect(asked).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(refreshed.map((s) => s.token)).toEqual(['t1']);
    expect(refreshed[0].expiresAt).toBe(Date.now() + 60_000);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(refreshed.map((s) => s.token)).toEqual(['t1', 't2']);
    keeper.stop();
  });

  it('refreshes the session’s own token, then the new one', async () => {
    const { keeper, tokens } = keeperWith([issued('t1'), issued('t2')]);
    keeper.start(session(60_000));
    await jest.advanceTimersByTimeAsync(60_000);
    expect(tokens).toEqual(['t0', 't1']);
    keeper.stop();
  });

  it('refreshes at once, when the tab comes back, a refresh whose time came while it slept', async () => {
    const { keeper, asked } = keeperWith([issued('t1')]);
    keeper.start(session(60_000));
    keeper.check();
    await jest.advanceTimersByTimeAsync(0);
    expect(asked).toHaveLength(0);
    // Asleep: the wall clock moved on, the timer did not fire.
    jest.setSystemTime(Date.now() + 40_000);
    keeper.check();
    await jest.advanceTimersByTimeAsync(0);
    expect(asked).toHaveLength(1);
    // The old timer does not ask again; the new token's refresh comes halfway through its life.
    await jest.advanceTimersByTimeAsync(29_999);
    expect(asked).toHaveLength(1);
    keeper.stop();
  });

  it('tries again a refresh that failed for now, and ends the session on UNAUTHORIZED', async () => {
    const { keeper, asked, refreshed, ended } = keeperWith([
      failing(ErrorCode.Unavailable),
      failing(ErrorCode.Unauthorized),
    ]);
    keeper.start(session(120_000));
    await jest.advanceTimersByTimeAsync(60_000);
    expect(asked).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(asked).toHaveLength(2);
    expect({ refreshed, ended }).toEqual({
      refreshed: [],
      ended: ['Your session expired: log in again.'],
    });
    await jest.advanceTimersByTimeAsync(600_000);
    expect(asked).toHaveLength(2);
  });

  it('refreshes at once a session that does not say when it expires, and nothing once stopped', async () => {
    const { keeper, asked } = keeperWith([issued('t1')]);
    keeper.start({ token: 't0', userId: 'u1', username: 'kim' });
    await jest.advanceTimersByTimeAsync(0);
    expect(asked).toHaveLength(1);
    keeper.stop();
    await jest.advanceTimersByTimeAsync(600_000);
    expect(asked).toHaveLength(1);
  });
});
