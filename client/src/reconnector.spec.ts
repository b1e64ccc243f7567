import type { ConnectionState } from './connection-state';
import { ChatError } from './errors';
import { Reconnector } from './reconnector';

const settle = () => jest.advanceTimersByTimeAsync(0);

/** A token provider whose first answer never comes (a refresh call that hangs), then answers. */
function hangingOnce() {
  let calls = 0;
  const token = () => {
    calls += 1;
    return calls === 1 ? new Promise<string>(() => undefined) : `t${calls}`;
  };
  return { token, calls: () => calls };
}

function reconnector(token: () => string | Promise<string>, tokenTimeoutMs?: number) {
  const opened: string[] = [];
  const states: ConnectionState[] = [];
  const instance = new Reconnector({
    token,
    tokenTimeoutMs,
    backoff: { baseMs: 1_000, capMs: 5_000 },
    open: (value) => opened.push(value),
  });
  instance.on('state', (state) => states.push(state));
  return { instance, opened, states };
}

describe('Reconnector', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('does not start on retryNow before start() or after stop(), and starts again after giving up', async () => {
    let opens = 0;
    const instance = new Reconnector({
      token: () => 't',
      backoff: { baseMs: 1_000, capMs: 5_000, maxRetries: 1 },
      open: () => {
        opens += 1;
        instance.lost();
      },
    });
    instance.retryNow();
    await settle();
    expect({ opens, state: instance.state }).toEqual({
      opens: 0,
      state: { status: 'offline', reason: 'not-started' },
    });

    instance.start();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(instance.state).toEqual({ status: 'offline', reason: 'retries-exhausted' });
    const given = opens;
    instance.retryNow();
    await settle();
    expect(opens).toBe(given + 1);
    // Started again with its retries, not one try.
    expect(instance.state).toMatchObject({ status: 'reconnecting', attempt: 1 });
    await jest.advanceTimersByTimeAsync(10_000);
    expect({ opens, state: instance.state }).toEqual({
      opens: given + 2,
      state: { status: 'offline', reason: 'retries-exhausted' },
    });

    instance.stop();
    instance.retryNow();
    await jest.advanceTimersByTimeAsync(10_000);
    expect({ opens, state: instance.state }).toEqual({
      opens: given + 2,
      state: { status: 'offline', reason: 'closed' },
    });
  });

  it('fails an attempt whose token provider never answers, backs off, and tries again', async () => {
    const provider = hangingOnce();
    const { instance, opened, states } = reconnector(provider.token, 3_000);
    instance.start();
    await jest.advanceTimersByTimeAsync(2_999);
    expect(instance.state.status).toBe('connecting');
    await jest.advanceTimersByTimeAsync(1);
    expect(states.at(-1)).toMatchObject({ status: 'reconnecting', attempt: 1 });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(provider.calls()).toBe(2);
    expect(opened).toEqual(['t2']);
    instance.stop();
  });

  it('retries, with backoff, an attempt whose connection cannot even be made', async () => {
    let opens = 0;
    const instance = new Reconnector({
      token: () => 't',
      backoff: { baseMs: 1_000, capMs: 5_000 },
      open: () => {
        opens += 1;
        if (opens === 1) throw new SyntaxError('Invalid URL');
      },
    });
    instance.start();
    await settle();
    expect(instance.state).toMatchObject({ status: 'reconnecting', attempt: 1 });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(opens).toBe(2);
    instance.stop();
  });

  it('stops as unauthorized when its token provider is refused twice in a row (an ended session)', async () => {
    const refused = { code: 'UNAUTHORIZED' as const, message: 'Session ended', details: [] };
    let calls = 0;
    const { instance, opened } = reconnector(() => {
      calls += 1;
      return Promise.reject(new ChatError(refused, 401));
    });
    instance.start();
    await jest.advanceTimersByTimeAsync(120_000);
    expect({ calls, opened, state: instance.state, timers: jest.getTimerCount() }).toEqual({
      calls: 2,
      opened: [],
      state: { status: 'unauthorized', error: refused },
      timers: 0,
    });
  });

  it('retries with backoff a token provider that failed for any other reason', async () => {
    let calls = 0;
    const { instance, opened, states } = reconnector(() => {
      calls += 1;
      if (calls === 1)
        throw new ChatError({ code: 'UNAVAILABLE', message: 'offline', details: [] });
      return 'fresh';
    });
    instance.start();
    await settle();
    expect(states.at(-1)).toMatchObject({ status: 'reconnecting', attempt: 1 });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(opened).toEqual(['fresh']);
    instance.stop();
  });

  it('gives a hanging token provider a default timeout', async () => {
    const provider = hangingOnce();
    const { instance } = reconnector(provider.token);
    instance.start();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(provider.calls()).toBeGreaterThanOrEqual(2);
    instance.stop();
  });

  it('asks for a new token at once again after a connection that followed a refusal', async () => {
    let calls = 0;
    const { instance, opened } = reconnector(() => `t${++calls}`);
    instance.start();
    await settle();
    instance.rejected({ code: 'UNAUTHORIZED', message: 'Unauthorized', details: [] });
    await settle();
    instance.succeeded();
    // Much later the token expires: a refusal like the first, not a second one in a row.
    instance.rejected({ code: 'UNAUTHORIZED', message: 'Unauthorized', details: [] });
    await settle();
    expect(instance.state.status).toBe('connecting');
    expect(opened).toEqual(['t1', 't2', 't3']);
    instance.stop();
  });

  it('waits out each delay, growing exponentially up to the cap, before it tries again', async () => {
    // The top of each jittered range: the delays are then exactly base × 2^n, capped.
    jest.spyOn(Math, 'random').mockReturnValue(0.9999);
    const { instance, opened } = reconnector(() => 't');
    instance.start();
    await settle();
    for (const delay of [1_000, 2_000, 4_000, 5_000, 5_000]) {
      const attempts = opened.length;
      instance.lost();
      expect(instance.state).toMatchObject({ status: 'reconnecting', retryInMs: delay });
      await jest.advanceTimersByTimeAsync(delay - 1);
      expect(opened).toHaveLength(attempts);
      await jest.advanceTimersByTimeAsync(1);
      expect(opened).toHaveLength(attempts + 1);
    }
    instance.stop();
    jest.restoreAllMocks();
  });

  it('starts its backoff over after a connection that lasted', async () => {
    const { instance, states } = reconnector(() => 't');
    instance.start();
    await settle();
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      instance.lost();
      expect(states.at(-1)).toMatchObject({ status: 'reconnecting', attempt });
      await jest.advanceTimersByTimeAsync(5_000);
    }
    instance.succeeded();
    await jest.advanceTimersByTimeAsync(10_000);
    instance.lost();
    expect(states.at(-1)).toMatchObject({ status: 'reconnecting', attempt: 1 });
    instance.stop();
  });

  it('ignores a token that arrives after its attempt timed out', async () => {
    let answer: (token: string) => void = () => undefined;
    let calls = 0;
    const { instance, opened } = reconnector(() => {
      calls += 1;
      return calls === 1 ? new Promise<string>((resolve) => (answer = resolve)) : 'fresh';
    }, 1_000);
    instance.start();
    await jest.advanceTimersByTimeAsync(1_000);
    answer('late');
    await settle();
    expect(opened).toEqual([]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(opened).toEqual(['fresh']);
    instance.stop();
  });

  it('waits no more for a token provider once stopped: no timer of it is left', async () => {
    const { instance } = reconnector(() => new Promise<string>(() => undefined), 15_000);
    instance.start();
    await settle();
    expect(jest.getTimerCount()).toBe(1);
    instance.stop();
    await settle();
    expect(jest.getTimerCount()).toBe(0);
  });
});
