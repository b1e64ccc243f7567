import type { ErrorBody, MessageJson } from './contract';
import { subscribeRoomEvents, type EventSourceLike, type SseMessageEvent } from './sse';
import { storedMessage } from './test-fixtures';

const ROOM = 'room-1';

/** An EventSource the test drives: it opens, and events arrive, when the test says. */
class FakeEventSource implements EventSourceLike {
  static readonly opened: FakeEventSource[] = [];
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onerror: ((event: { code?: number }) => void) | null = null;
  private readonly listeners = new Map<string, (event: SseMessageEvent) => void>();

  constructor(readonly url: string) {
    FakeEventSource.opened.push(this);
  }

  addEventListener(type: string, listener: (event: SseMessageEvent) => void): void {
    this.listeners.set(type, listener);
  }
  close(): void {
    this.readyState = 2;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  event(type: string, data: unknown, id = ''): void {
    this.listeners.get(type)?.({ data: JSON.stringify(data), lastEventId: id });
  }
  message(seq: number): void {
    this.event('chat:message', storedMessage(ROOM, seq), String(seq));
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Waits a moment, as the helpers' timers and token reads take a few turns. */
const aMoment = () => new Promise((resolve) => setTimeout(resolve, 20));

async function follow(
  since?: number,
  fetch?: typeof globalThis.fetch,
  backoff?: { baseMs: number; capMs: number },
) {
  FakeEventSource.opened.length = 0;
  const seen: number[] = [];
  const refusals: ErrorBody[] = [];
  const fatal: ErrorBody[] = [];
  let tokens = 0;
  const subscription = subscribeRoomEvents({
    url: 'http://chat.test',
    token: () => `token-${++tokens}`,
    EventSource: FakeEventSource,
    fetch,
    backoff,
    roomId: ROOM,
    since,
    onMessage: (message: MessageJson) => seen.push(message.seq),
    onRefused: (error) => refusals.push(error),
    onFatal: (error) => fatal.push(error),
  });
  await settle();
  const source = FakeEventSource.opened[0];
  source.open();
  return { seen, refusals, fatal, source, subscription };
}

const closedBy = (code: string, message: string) => ({ code, message, details: [] });

describe('subscribeRoomEvents', () => {
  it('takes its position from connected: later messages at or below it are not shown', async () => {
    const { seen, source, subscription } = await follow(50);
    expect(source.url).toContain('since=50');
    source.event('connected', { userId: 'u', roomId: ROOM, since: 1 }, '1');
    source.message(2);
    source.message(2);
    source.message(3);
    expect(seen).toEqual([2, 3]);
    subscription.close();
  });

  it('lets the first message reset the position on a server that sends no connected', async () => {
    const { seen, source, subscription } = await follow(50);
    source.message(2);
    source.message(2);
    source.message(3);
    expect(seen).toEqual([2, 3]);
    subscription.close();
  });

  it('drops repeats after connected even when they come first', async () => {
    const { seen, source, subscription } = await follow(5);
    source.event('connected', { userId: 'u', roomId: ROOM, since: 5 }, '5');
    source.message(5);
    source.message(6);
    expect(seen).toEqual([6]);
    subscription.close();
  });

  it('tells the app of a stream refused for now, which the EventSource retries by itself', async () => {
    const { seen, refusals, source, subscription } = await follow(5);
    const refusal = { code: 'RATE_LIMITED', message: 'Too many open event streams', details: [] };
    source.event('refused', refusal);
    expect(refusals).toEqual([refusal]);
    expect(seen).toEqual([]);
    expect(FakeEventSource.opened).toHaveLength(1);
    subscription.close();
  });
});

describe('subscribeRoomEvents when the server ends the stream', () => {
  it('opens another at once with a fresh token, from the last seq, when the token expired', async () => {
    const { seen, fatal, source, subscription } = await follow(5);
    source.message(6);

    source.event('closed', closedBy('UNAUTHORIZED', 'Token expired'));
    await aMoment();

    expect(source.readyState).toBe(2);
    expect(FakeEventSource.opened).toHaveLength(2);
    const next = new URL(FakeEventSource.opened[1].url);
    expect(next.searchParams.get('token')).toBe('token-2');
    expect(next.searchParams.get('since')).toBe('6');
    expect(seen).toEqual([6]);
    expect(fatal).toEqual([]);
    subscription.close();
  });

  it("stops for good, telling the app, when the private room is no longer the user's", async () => {
    const { fatal, source, subscription } = await follow(5);
    const reason = closedBy('NOT_FOUND', 'Room not found');

    source.event('closed', reason);
    await aMoment();

    expect(source.readyState).toBe(2);
    expect(fatal).toEqual([reason]);
    expect(FakeEventSource.opened).toHaveLength(1);
    subscription.close();
  });

  it.each([
    ['a history read that failed', 'INTERNAL'],
    ['a code it does not know', 'SOMETHING_NEW'],
  ])('opens another with backoff, from the last seq, after %s', async (_, code) => {
    const { seen, fatal, source, subscription } = await follow(5, undefined, {
      baseMs: 10,
      capMs: 20,
    });
    source.message(6);

    source.event('closed', closedBy(code, 'Could not read the room'));
    const deadline = Date.now() + 2_000;
    while (FakeEventSource.opened.length < 2 && Date.now() < deadline) await aMoment();

    expect(source.readyState).toBe(2);
    expect(fatal).toEqual([]);
    expect(FakeEventSource.opened).toHaveLength(2);
    expect(new URL(FakeEventSource.opened[1].url).searchParams.get('since')).toBe('6');
    expect(seen).toEqual([6]);
    subscription.close();
  });

  it('leaves a node that shuts down to the EventSource, which resumes by itself', async () => {
    const { fatal, source, subscription } = await follow(5);

    source.event('closed', closedBy('UNAVAILABLE', 'The server is shutting down: connect again'));
    await aMoment();

    expect(source.readyState).toBe(1);
    expect(fatal).toEqual([]);
    expect(FakeEventSource.opened).toHaveLength(1);
    subscription.close();
  });
});

describe('subscribeRoomEvents with a request no retry can mend', () => {
  it('stops for good, telling the app, on a stream refused with 400', async () => {
    const { fatal, source, subscription } = await follow(5);
    source.readyState = 2;
    source.onerror?.({ code: 400 });
    await aMoment();

    expect(fatal).toEqual([expect.objectContaining({ code: 'VALIDATION_FAILED' })]);
    expect(FakeEventSource.opened).toHaveLength(1);
    subscription.close();
  });

  /** A fetch answering every REST read with `status` and the contract's error. */
  const answering = (status: number, code: string) => () =>
    Promise.resolve(
      new Response(JSON.stringify({ code, message: code, details: [] }), {
        status,
        headers: { 'Content-Type': 'application/json' },
      }),
    );

  it('asks REST why a browser’s own reconnection of an open stream was refused, and stops on 404', async () => {
    const { fatal, source, subscription } = await follow(5, answering(404, 'NOT_FOUND'));
    // A browser's EventSource, which reconnected by itself and was refused, says no more.
    source.readyState = 2;
    source.onerror?.({});
    await aMoment();

    expect(fatal).toEqual([expect.objectContaining({ code: 'NOT_FOUND' })]);
    expect(FakeEventSource.opened).toHaveLength(1);
    subscription.close();
  });

  it('opens a stream with a fresh token at once when that reconnection was refused with 401', async () => {
    const { fatal, source, subscription } = await follow(5, answering(401, 'UNAUTHORIZED'));
    source.readyState = 2;
    source.onerror?.({});
    await aMoment();

    expect(fatal).toEqual([]);
    expect(FakeEventSource.opened).toHaveLength(2);
    expect(FakeEventSource.opened[1].url).toContain('token=token-2');
    subscription.close();
  });

  it.each([-40, 1.5, Number.NaN, 2 ** 31])(
    'refuses since %p without opening a stream',
    async (since) => {
      FakeEventSource.opened.length = 0;
      const fatal: ErrorBody[] = [];
      subscribeRoomEvents({
        url: 'http://chat.test',
        token: () => 'token',
        EventSource: FakeEventSource,
        roomId: ROOM,
        since,
        onMessage: () => undefined,
        onFatal: (error) => fatal.push(error),
      });
      await aMoment();

      expect(fatal).toEqual([expect.objectContaining({ code: 'VALIDATION_FAILED' })]);
      expect(FakeEventSource.opened).toEqual([]);
    },
  );
});

describe('subscribeRoomEvents with a token provider that hangs', () => {
  it('waits for it no more once closed: no timer of it is left', async () => {
    jest.useFakeTimers();
    try {
      const subscription = subscribeRoomEvents({
        url: 'http://chat.test',
        token: () => new Promise<string>(() => undefined),
        EventSource: FakeEventSource,
        roomId: ROOM,
        onMessage: () => undefined,
      });
      await jest.advanceTimersByTimeAsync(0);
      expect(jest.getTimerCount()).toBe(1);
      subscription.close();
      await jest.advanceTimersByTimeAsync(0);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('gives up on the provider after tokenTimeoutMs and tries again with backoff', async () => {
    FakeEventSource.opened.length = 0;
    let asked = 0;
    const subscription = subscribeRoomEvents({
      url: 'http://chat.test',
      token: () => (asked++ === 0 ? new Promise<string>(() => undefined) : 'token'),
      tokenTimeoutMs: 30,
      backoff: { baseMs: 10, capMs: 20 },
      EventSource: FakeEventSource,
      roomId: ROOM,
      onMessage: () => undefined,
    });
    const deadline = Date.now() + 2_000;
    while (FakeEventSource.opened.length === 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(asked).toBe(2);
    expect(FakeEventSource.opened).toHaveLength(1);
    subscription.close();
  });
});
