import type { ConnectionState } from './connection-state';
import type { NotificationJson, RoomJson } from './contract';
import { WsClient, type WebSocketLike, type WsClientEvents } from './ws-client';
import { WsServerFrameType } from './ws-frames';
import { storedMessage } from './test-fixtures';

const ROOM = '0190b0b0-0000-7000-8000-0000000000aa';
const OTHER_ROOM = '0190b0b0-0000-7000-8000-0000000000bb';

/** Stands in for a browser or `ws` socket; the test plays the server. */
class FakeSocket implements WebSocketLike {
  static instances: FakeSocket[] = [];
  readyState = 0;
  readonly sent: Array<{ type: string; room?: string; payload?: unknown }> = [];
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;

  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
  }

  static get last(): FakeSocket {
    return FakeSocket.instances[FakeSocket.instances.length - 1];
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(): void {
    this.readyState = 3;
  }

  accept(userId = 'u1'): void {
    this.readyState = 1;
    this.onopen?.({});
    this.frame({ type: WsServerFrameType.Connected, userId });
  }

  frame(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The server's answer to a ping (`/ws` answers `pong`, never an error). */
  pong(): void {
    this.frame({ type: WsServerFrameType.Pong });
  }

  joined(room: string, lastSeq?: number): void {
    this.frame({ type: WsServerFrameType.Joined, room, lastSeq });
  }

  /** An error frame; `request` names the frame it refuses, as the server does. */
  error(code: string, request: { request?: string; room?: string } = {}, message = code): void {
    this.frame({ type: WsServerFrameType.Error, code, message, details: [], ...request });
  }

  /** The frames of one type sent so far. */
  sentOf(type: string) {
    return this.sent.filter((frame) => frame.type === type);
  }

  /** What the server does with a bad token: completes the upgrade, then closes 4001. */
  refuse(): void {
    this.readyState = 1;
    this.onopen?.({});
    this.drop(4001, 'Unauthorized');
  }

  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const settle = () => jest.advanceTimersByTimeAsync(0);

function client(options: Partial<ConstructorParameters<typeof WsClient>[0]> = {}) {
  const tokens: string[] = [];
  const states: ConnectionState[] = [];
  const ws = new WsClient({
    url: 'http://127.0.0.1:1',
    token: () => {
      tokens.push(`t${tokens.length + 1}`);
      return tokens[tokens.length - 1];
    },
    WebSocket: FakeSocket,
    resume: false,
    backoff: { baseMs: 1_000, capMs: 5_000 },
    ...options,
  });
  ws.on('state', (state) => states.push(state));
  return { ws, tokens, states };
}

/** Records an event's payloads. */
function record<K extends keyof WsClientEvents>(ws: WsClient, event: K): WsClientEvents[K][] {
  const seen: WsClientEvents[K][] = [];
  ws.on(event, (payload) => seen.push(payload));
  return seen;
}

/** The socket the client opens after `socket` drops, once its reconnect delay has passed, accepted. */
async function reconnectedAfter(socket: FakeSocket): Promise<FakeSocket> {
  socket.drop();
  await jest.advanceTimersByTimeAsync(5_001);
  const next = FakeSocket.last;
  expect(next).not.toBe(socket);
  next.accept();
  return next;
}

async function connected(ws: WsClient): Promise<FakeSocket> {
  ws.connect();
  await settle();
  FakeSocket.last.accept();
  return FakeSocket.last;
}

/** Connected, in ROOM, and leaving it: the leave is the last frame sent. */
async function joinedThenLeft(ws: WsClient): Promise<FakeSocket> {
  const socket = await connected(ws);
  ws.join(ROOM);
  socket.joined(ROOM);
  ws.leave(ROOM);
  return socket;
}

const message = (seq: number, roomId = ROOM) => storedMessage(roomId, seq);

/** REST history of a room holding messages 1..`stored`; records the `since` of every call. */
function restHistory(stored: () => number) {
  const calls: number[] = [];
  const fetch = (url: string) => {
    const since = Number(new URL(url).searchParams.get('since'));
    calls.push(since);
    const items = Array.from({ length: Math.max(0, stored() - since) }, (_, i) =>
      message(since + 1 + i),
    );
    return Promise.resolve(new Response(JSON.stringify({ items, nextCursor: null })));
  };
  return { fetch, calls };
}

/** Like `restHistory`, but the first answer, read when asked, is held until `answerFirst`. */
function slowFirstRestHistory(stored: () => number) {
  const rest = restHistory(stored);
  let answerFirst!: () => void;
  const firstHeld = new Promise<void>((resolve) => (answerFirst = resolve));
  const fetch = async (url: string) => {
    const response = await rest.fetch(url);
    if (rest.calls.length === 1) await firstHeld;
    return response;
  };
  return { fetch, calls: rest.calls, answerFirst };
}

function removedFrom(roomId: string): NotificationJson {
  const room: RoomJson = {
    id: roomId,
    name: 'gone',
    isPrivate: true,
    ownerId: 'u9',
    createdAt: new Date(0).toISOString(),
    lastSeq: 3,
  };
  return { type: 'room:removed', room, by: { id: 'u9', username: 'owner' } };
}

describe('WsClient', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    FakeSocket.instances = [];
  });
  afterEach(() => jest.useRealTimers());

  it('connects to /ws with the token in the query', async () => {
    const { ws } = client();
    ws.connect();
    await settle();
    expect(FakeSocket.last.url).toBe('ws://127.0.0.1:1/ws?token=t1');
    FakeSocket.last.accept();
    expect(ws.state.status).toBe('connected');
    ws.close();
  });

  it('hands a token given while not connected to the next connection, unless made with it or after close()', async () => {
    const { ws } = client();
    ws.renewToken('fresh');
    ws.connect();
    await settle();
    FakeSocket.last.accept();
    expect(FakeSocket.last.sentOf('auth')).toEqual([{ type: 'auth', token: 'fresh' }]);

    ws.close();
    ws.renewToken('of the user before');
    ws.connect();
    await settle();
    FakeSocket.last.accept();
    expect(FakeSocket.last.sentOf('auth')).toEqual([]);

    ws.close();
    ws.connect();
    await settle();
    ws.renewToken('t3'); // the token this connection is being made with
    FakeSocket.last.accept();
    expect(FakeSocket.last.sentOf('auth')).toEqual([]);
    ws.close();
  });

  it('hands a token given while the connection is closing to the next connection', async () => {
    const { ws } = client();
    const closing = await connected(ws);
    closing.readyState = 2;
    ws.renewToken('fresh');
    expect(closing.sentOf('auth')).toEqual([]);
    await reconnectedAfter(closing);
    expect(FakeSocket.last.sentOf('auth')).toEqual([{ type: 'auth', token: 'fresh' }]);
    ws.close();
  });

  it('hands a token the connection took but never answered to the next one, and not once answered', async () => {
    const { ws } = client();
    const first = await connected(ws);
    ws.renewToken('fresh');
    expect(first.sentOf('auth')).toEqual([{ type: 'auth', token: 'fresh' }]);
    const second = await reconnectedAfter(first);
    expect(second.sentOf('auth')).toEqual([{ type: 'auth', token: 'fresh' }]);

    second.frame({ type: 'authenticated', userId: 'u1', expiresAt: new Date().toISOString() });
    await reconnectedAfter(second);
    expect(FakeSocket.last.sentOf('auth')).toEqual([]);
    ws.close();
  });

  it('keeps handing on a newer token when an older renewal is answered, taken or refused', async () => {
    for (const answer of [
      { type: 'authenticated', userId: 'u1', expiresAt: new Date().toISOString() },
      { type: 'error', code: 'RATE_LIMITED', message: 'Too many', details: [], request: 'auth' },
    ]) {
      const { ws } = client();
      const first = await connected(ws);
      ws.renewToken('older');
      ws.renewToken('newer');
      first.frame(answer);
      await reconnectedAfter(first);
      expect(FakeSocket.last.sentOf('auth')).toEqual([{ type: 'auth', token: 'newer' }]);
      ws.close();
    }
  });

  it('clears a renewal answered after frames sent behind it, as a busy server answers it', async () => {
    const { ws } = client();
    const first = await connected(ws);
    ws.renewToken('fresh');
    ws.join(ROOM);
    first.frame({ type: 'joined', room: ROOM, lastSeq: 0 });
    first.frame({ type: 'authenticated', userId: 'u1', expiresAt: new Date().toISOString() });
    await reconnectedAfter(first);
    expect(FakeSocket.last.sentOf('auth')).toEqual([]);
    ws.close();
  });

  it('sends nothing asked for after close() on the next connection, and says so', async () => {
    const { ws } = client();
    await connected(ws);
    ws.close();
    const lost: string[] = [];
    const dropped: unknown[] = [];
    ws.on('roomLost', ({ room, error }) => lost.push(`${room} ${error.code}`));
    ws.on('dropped', (frame) => dropped.push(frame));
    ws.join(ROOM);
    ws.broadcast(ROOM, { after: 'close' });
    expect(lost).toEqual([`${ROOM} UNAVAILABLE`]);
    expect(dropped).toEqual([{ type: 'broadcast', room: ROOM, payload: { after: 'close' } }]);

    const next = await connected(ws);
    expect(next.sentOf('join')).toEqual([]);
    expect(next.sentOf('broadcast')).toEqual([]);
    ws.close();
  });

  it('joins a room joined from a listener of the connected state once', async () => {
    const { ws } = client();
    ws.on('state', (state) => {
      if (state.status === 'connected') ws.join(ROOM);
    });
    const socket = await connected(ws);
    expect(socket.sentOf('join')).toEqual([{ type: 'join', room: ROOM }]);
    ws.close();
  });

  it('joins a room left and joined again from a listener of the connected state once', async () => {
    const { ws } = client();
    ws.join(ROOM);
    ws.on('state', (state) => {
      if (state.status !== 'connected') return;
      ws.leave(ROOM);
      ws.join(ROOM);
    });
    const socket = await connected(ws);
    expect(socket.sentOf('join')).toEqual([{ type: 'join', room: ROOM }]);
    // Nothing to leave on a connection that had not joined it yet.
    expect(socket.sentOf('leave')).toEqual([]);
    ws.close();
  });

  it('refuses a broadcast over the size limit, which the server would answer by closing', async () => {
    const { ws } = client({ maxPayloadBytes: 1_024 });
    const socket = await connected(ws);
    const before = socket.sent.length;
    expect(() => ws.broadcast(ROOM, { text: 'x'.repeat(1_024) })).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }),
    );
    ws.broadcast(ROOM, { text: 'fits' });
    expect(socket.sent.slice(before)).toEqual([
      { type: 'broadcast', room: ROOM, payload: { text: 'fits' } },
    ]);
    ws.close();
  });

  it('asks for a new token once after a 4001, then stops for good: no retry storm', async () => {
    const { ws, tokens, states } = client();
    ws.connect();
    await settle();
    FakeSocket.last.refuse();
    await settle();
    expect(FakeSocket.instances).toHaveLength(2);
    expect(FakeSocket.last.url).toContain('token=t2');
    FakeSocket.last.refuse();
    await jest.advanceTimersByTimeAsync(120_000);
    expect(FakeSocket.instances).toHaveLength(2);
    expect(tokens).toHaveLength(2);
    expect(states.at(-1)).toMatchObject({
      status: 'unauthorized',
      error: { code: 'UNAUTHORIZED' },
    });
  });

  it('reconnects at once with a fresh token when an open connection is closed with 4001 (expiry)', async () => {
    const { ws } = client();
    ws.connect();
    await settle();
    FakeSocket.last.accept();
    FakeSocket.last.drop(4001, 'Unauthorized');
    await settle();
    expect(FakeSocket.instances).toHaveLength(2);
    FakeSocket.last.accept();
    expect(ws.state.status).toBe('connected');
    ws.close();
  });

  it('retries after a jittered delay, reporting it in the state', async () => {
    const { ws, states } = client();
    ws.connect();
    await settle();
    FakeSocket.last.drop();
    const reconnecting = states.at(-1);
    expect(reconnecting).toMatchObject({ status: 'reconnecting', attempt: 1 });
    const delay = (reconnecting as { retryInMs: number }).retryInMs;
    expect(delay).toBeLessThanOrEqual(1_000);
    await jest.advanceTimersByTimeAsync(delay + 1);
    expect(FakeSocket.instances).toHaveLength(2);
    ws.close();
  });

  it('queues frames while disconnected, dropping the oldest when full', async () => {
    const { ws } = client({ maxQueued: 3 });
    const dropped: unknown[] = [];
    ws.on('dropped', (frame) => dropped.push(frame));
    for (let i = 1; i <= 5; i += 1) ws.broadcast(ROOM, { i });
    expect(ws.queued).toBe(3);
    expect(dropped).toEqual([
      { type: 'broadcast', room: ROOM, payload: { i: 1 } },
      { type: 'broadcast', room: ROOM, payload: { i: 2 } },
    ]);
    ws.connect();
    await settle();
    FakeSocket.last.accept();
    expect(FakeSocket.last.sent.map((frame) => frame.payload)).toEqual([
      { i: 3 },
      { i: 4 },
      { i: 5 },
    ]);
    expect(ws.queued).toBe(0);
    ws.close();
  });

  it('re-joins its rooms after a reconnect, before sending queued frames', async () => {
    const { ws } = client();
    ws.join(ROOM);
    ws.connect();
    await settle();
    FakeSocket.last.accept();
    expect(FakeSocket.last.sent).toEqual([{ type: 'join', room: ROOM }]);
    FakeSocket.last.drop();
    ws.broadcast(ROOM, 'while away');
    await jest.advanceTimersByTimeAsync(1_001);
    FakeSocket.last.accept();
    expect(FakeSocket.last.sent).toEqual([
      { type: 'join', room: ROOM },
      { type: 'broadcast', room: ROOM, payload: 'while away' },
    ]);
    ws.close();
  });

  it('ends joined when a room is left while the socket closes and joined again before the reconnect', async () => {
    const { ws } = client();
    ws.join(ROOM);
    const first = await connected(ws);
    first.joined(ROOM);
    first.readyState = 2; // closing: the close event has not come yet
    ws.leave(ROOM);
    first.drop();
    ws.join(ROOM);
    await jest.advanceTimersByTimeAsync(1_001);
    FakeSocket.last.accept();
    expect(FakeSocket.last.sent).toEqual([{ type: 'join', room: ROOM }]);
    ws.close();
  });

  it('probes a silent link and reconnects when the probe is not answered', async () => {
    const { ws, states } = client({ heartbeat: { idleMs: 1_000, timeoutMs: 500 } });
    const errors: unknown[] = [];
    ws.on('error', (error) => errors.push(error));
    ws.connect();
    await settle();
    const first = FakeSocket.last;
    first.accept();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(first.sent).toEqual([{ type: 'ping' }]);
    first.pong();
    expect(errors).toEqual([]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(first.sent).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(500);
    expect(states.at(-1)?.status).toBe('reconnecting');
    expect(first.readyState).toBe(3);
    ws.close();
  });

  it('gives up on an attempt that never says connected', async () => {
    const { ws, states } = client({ connectTimeoutMs: 2_000 });
    ws.connect();
    await settle();
    await jest.advanceTimersByTimeAsync(1_900);
    expect(states.some((state) => state.status === 'reconnecting')).toBe(false);
    await jest.advanceTimersByTimeAsync(200);
    expect(states.some((state) => state.status === 'reconnecting')).toBe(true);
    ws.close();
  });

  it('stays closed after close()', async () => {
    const { ws } = client();
    ws.connect();
    await settle();
    FakeSocket.last.accept();
    ws.close();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(ws.state).toEqual({ status: 'offline', reason: 'closed' });
  });

  it('stays closed, or not started, when asked to reconnect at once', async () => {
    const { ws } = client();
    ws.reconnectNow();
    await settle();
    expect(FakeSocket.instances).toHaveLength(0);
    ws.connect();
    await settle();
    FakeSocket.last.accept();
    ws.close();
    ws.reconnectNow();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(ws.state).toEqual({ status: 'offline', reason: 'closed' });
  });

  it('forgets its rooms on close(): connected again, it joins none of them', async () => {
    const { ws } = client();
    ws.join(ROOM);
    const first = await connected(ws);
    first.joined(ROOM, 5);
    ws.close();

    ws.connect();
    await settle();
    FakeSocket.last.accept();
    await settle();

    expect(FakeSocket.last.sentOf('join')).toEqual([]);
    ws.close();
  });

  it('drops the broadcasts queued when closed: connected again, it sends none of them', async () => {
    const { ws } = client();
    const dropped = record(ws, 'dropped');
    ws.join(ROOM);
    ws.broadcast(ROOM, 'queued before close');
    ws.close();
    expect(dropped).toEqual([{ type: 'broadcast', room: ROOM, payload: 'queued before close' }]);

    const socket = await connected(ws);
    await settle();
    expect(socket.sentOf('broadcast')).toEqual([]);
    ws.close();
  });

  it('reports every server error after answered probes: a pong settles its probe', async () => {
    const { ws } = client({ heartbeat: { idleMs: 1_000, timeoutMs: 500 } });
    const errors = record(ws, 'error');
    const socket = await connected(ws);
    for (let probe = 1; probe <= 3; probe += 1) {
      await jest.advanceTimersByTimeAsync(1_000);
      expect(socket.sentOf('ping')).toHaveLength(probe);
      socket.pong();
    }
    ws.broadcast('not-a-room', 'x');
    socket.error('VALIDATION_FAILED', { request: 'broadcast' }, 'room must be a room id (UUID)');
    expect(errors).toEqual([
      {
        code: 'VALIDATION_FAILED',
        message: 'room must be a room id (UUID)',
        details: [],
        request: 'broadcast',
      },
    ]);
    expect(ws.state.status).toBe('connected');
    ws.close();
  });

  it('retries a join the server refused for a passing reason, with backoff', async () => {
    const { ws } = client();
    const joined = record(ws, 'joined');
    const errors = record(ws, 'error');
    ws.join(ROOM);
    ws.join(OTHER_ROOM);
    const socket = await connected(ws);
    socket.joined(ROOM);
    socket.error(
      'RATE_LIMITED',
      { request: 'join', room: OTHER_ROOM },
      'Too many join requests: retry in 1 s',
    );
    expect(socket.sentOf('join')).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(socket.sentOf('join')).toEqual([
      { type: 'join', room: ROOM },
      { type: 'join', room: OTHER_ROOM },
      { type: 'join', room: OTHER_ROOM },
    ]);
    socket.joined(OTHER_ROOM);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(socket.sentOf('join')).toHaveLength(3);
    expect(joined).toEqual([{ room: ROOM }, { room: OTHER_ROOM }]);
    expect(errors).toEqual([]);
    ws.close();
  });

  it('still retries a join refused after a renewal answered ahead of it, as a busy server does', async () => {
    const { ws } = client();
    const errors = record(ws, 'error');
    ws.join(ROOM);
    const socket = await connected(ws);
    ws.renewToken('fresh');
    socket.frame({ type: WsServerFrameType.Authenticated, userId: 'u1', expiresAt: 'later' });
    socket.error('UNAVAILABLE', { request: 'join', room: ROOM }, 'Too many frames waiting');
    await jest.advanceTimersByTimeAsync(2_000);
    expect(socket.sentOf('join')).toEqual([
      { type: 'join', room: ROOM },
      { type: 'join', room: ROOM },
    ]);
    expect(errors).toEqual([]);
    ws.close();
  });

  it('sends no leave for a room whose refused join waits for its retry, and joins it no more', async () => {
    const { ws } = client();
    const errors = record(ws, 'error');
    const socket = await connected(ws);
    ws.join(ROOM);
    socket.error('RATE_LIMITED', { request: 'join', room: ROOM });
    ws.leave(ROOM);
    await jest.advanceTimersByTimeAsync(60_000);
    expect({ joins: socket.sentOf('join'), leaves: socket.sentOf('leave'), errors }).toEqual({
      joins: [{ type: 'join', room: ROOM }],
      leaves: [],
      errors: [],
    });
    ws.close();
  });

  it('does not tell the app of a join answered after it left the room', async () => {
    const { ws } = client();
    const joined = record(ws, 'joined');
    const socket = await connected(ws);
    ws.join(ROOM);
    ws.leave(ROOM);
    socket.joined(ROOM);
    expect({ joined, leaves: socket.sentOf('leave') }).toEqual({
      joined: [],
      leaves: [{ type: 'leave', room: ROOM }],
    });
    ws.close();
  });

  it('drops a room whose join the server fails on three times', async () => {
    const { ws } = client();
    const lost = record(ws, 'roomLost');
    const socket = await connected(ws);
    ws.join(ROOM);
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      expect(socket.sentOf('join')).toHaveLength(attempt);
      socket.error('INTERNAL', { request: 'join', room: ROOM });
      await jest.advanceTimersByTimeAsync(30_001);
    }
    expect(lost).toMatchObject([{ room: ROOM, error: { code: 'INTERNAL' } }]);
    expect(socket.sentOf('join')).toHaveLength(3);
    ws.close();
  });

  it('drops a room the server refuses for good, tells the app, and does not join it again', async () => {
    const { ws } = client();
    const lost = record(ws, 'roomLost');
    ws.join(ROOM);
    const first = await connected(ws);
    first.error('NOT_FOUND', { request: 'join', room: ROOM }, 'Room not found');
    expect(lost).toEqual([
      { room: ROOM, error: { code: 'NOT_FOUND', message: 'Room not found', details: [] } },
    ]);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(first.sentOf('join')).toHaveLength(1);
    first.drop();
    await jest.advanceTimersByTimeAsync(1_001);
    FakeSocket.last.accept();
    expect(FakeSocket.instances).toHaveLength(2);
    expect(FakeSocket.last.sentOf('join')).toEqual([]);
    ws.close();
  });

  it('tells a refused join from a refused broadcast by the request the error names', async () => {
    const { ws } = client();
    const errors = record(ws, 'error');
    const lost = record(ws, 'roomLost');
    const joined = record(ws, 'joined');
    const socket = await connected(ws);
    ws.broadcast(ROOM, 'unanswered when delivered');
    ws.join(OTHER_ROOM);
    ws.broadcast('not-a-room', 'refused');
    ws.join(ROOM);
    expect(socket.sent.map((frame) => frame.type)).toEqual([
      'broadcast',
      'join',
      'broadcast',
      'join',
    ]);

    socket.error('NOT_FOUND', { request: 'join', room: OTHER_ROOM.toUpperCase() });
    socket.error('VALIDATION_FAILED', { request: 'broadcast' });
    socket.joined(ROOM);

    expect(lost).toMatchObject([{ room: OTHER_ROOM, error: { code: 'NOT_FOUND' } }]);
    expect(errors).toEqual([
      {
        code: 'VALIDATION_FAILED',
        message: 'VALIDATION_FAILED',
        details: [],
        request: 'broadcast',
      },
    ]);
    expect(joined).toEqual([{ room: ROOM }]);
    ws.close();
  });

  it('pairs a refusal that overtakes earlier frames (too many waiting) with its own frame only', async () => {
    const { ws } = client();
    const lost = record(ws, 'roomLost');
    const socket = await connected(ws);
    ws.join(OTHER_ROOM);
    ws.join(ROOM);

    socket.error('UNAVAILABLE', { request: 'join', room: ROOM }, 'Too many frames waiting');
    socket.error('NOT_FOUND', { request: 'join', room: OTHER_ROOM }, 'Room not found');

    expect(lost).toMatchObject([{ room: OTHER_ROOM, error: { code: 'NOT_FOUND' } }]);
    await jest.advanceTimersByTimeAsync(2_001);
    expect(socket.sentOf('join').map((frame) => frame.room)).toEqual([OTHER_ROOM, ROOM, ROOM]);
    ws.close();
  });

  it('sends a leave the server refused for now again, until it is answered', async () => {
    const { ws } = client();
    const errors = record(ws, 'error');
    const socket = await joinedThenLeft(ws);

    socket.error('UNAVAILABLE', { request: 'leave', room: ROOM }, 'Too many frames waiting');
    await jest.advanceTimersByTimeAsync(2_001);
    expect(socket.sentOf('leave')).toHaveLength(2);
    socket.frame({ type: WsServerFrameType.Left, room: ROOM });
    await jest.advanceTimersByTimeAsync(60_000);

    expect(socket.sentOf('leave')).toHaveLength(2);
    expect(errors).toEqual([]);
    ws.close();
  });

  it('keeps one retry per refused leave, and reports a leave refused for another reason', async () => {
    const { ws } = client();
    const errors = record(ws, 'error');
    const socket = await joinedThenLeft(ws);
    ws.join(ROOM);
    ws.leave(ROOM);
    socket.error('UNAVAILABLE', { request: 'leave', room: ROOM });
    socket.error('RATE_LIMITED', { request: 'leave', room: ROOM });
    await jest.advanceTimersByTimeAsync(30_001);
    expect(socket.sentOf('leave')).toHaveLength(3);

    ws.join(OTHER_ROOM);
    socket.joined(OTHER_ROOM);
    ws.leave(OTHER_ROOM);
    socket.error('INTERNAL', { request: 'leave', room: OTHER_ROOM });
    await jest.advanceTimersByTimeAsync(30_001);
    expect(socket.sentOf('leave')).toHaveLength(4);
    expect(errors).toMatchObject([{ code: 'INTERNAL' }]);
    ws.close();
  });

  it('does not send a refused leave again once the room is joined again', async () => {
    const { ws } = client();
    const socket = await joinedThenLeft(ws);
    socket.error('UNAVAILABLE', { request: 'leave', room: ROOM });

    ws.join(ROOM);
    await jest.advanceTimersByTimeAsync(60_000);

    expect(socket.sentOf('leave')).toHaveLength(1);
    ws.close();
  });

  it('takes an error that names no request for the server’s own notice, refusing no join', async () => {
    const { ws } = client();
    const errors = record(ws, 'error');
    const lost = record(ws, 'roomLost');
    const joined = record(ws, 'joined');
    ws.join(ROOM);
    const socket = await connected(ws);

    socket.error('INTERNAL', {}, 'Something went wrong');
    socket.joined(ROOM);

    expect(errors).toMatchObject([{ code: 'INTERNAL' }]);
    expect(lost).toEqual([]);
    expect(joined).toEqual([{ room: ROOM }]);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(socket.sentOf('join')).toHaveLength(1);
    ws.close();
  });

  it('reports a failing gap fill once, however many messages wait on it', async () => {
    let answer!: (response: Response) => void;
    const fetch = () => new Promise<Response>((resolve) => (answer = resolve));
    const { ws } = client({ resume: true, fetch });
    const errors = record(ws, 'error');
    const catchUps = record(ws, 'catchUpFailed');
    ws.join(ROOM);
    const socket = await connected(ws);
    socket.joined(ROOM, 1);
    await settle();
    for (const seq of [3, 4, 5])
      socket.frame({ type: WsServerFrameType.ChatMessage, room: ROOM, message: message(seq) });
    await settle();
    answer(new Response('{"code":"UNAVAILABLE","message":"down","details":[]}', { status: 503 }));
    await settle();
    expect(errors).toEqual([{ code: 'UNAVAILABLE', message: 'down', details: [] }]);
    // Told apart from the server's own errors, which are no catch-up.
    expect(catchUps).toEqual([{ room: ROOM, error: errors[0] }]);
    socket.error('RATE_LIMITED', { request: 'broadcast', room: ROOM });
    expect(catchUps).toHaveLength(1);
    ws.close();
  });

  it('says which room a catch-up failed for, and when it has caught up', async () => {
    const rest = restHistory(() => 5);
    let failures = 1;
    const fetch = (url: string) =>
      failures-- > 0
        ? Promise.resolve(
            new Response('{"code":"UNAVAILABLE","message":"down","details":[]}', { status: 503 }),
          )
        : rest.fetch(url);
    const { ws } = client({ resume: true, fetch });
    const catchUps = record(ws, 'catchUpFailed');
    const caughtUp = record(ws, 'caughtUp');
    const seen = record(ws, 'chatMessage');
    ws.join(ROOM);
    const socket = await connected(ws);
    socket.joined(ROOM, 1);
    await settle();
    socket.frame({ type: WsServerFrameType.ChatMessage, room: ROOM, message: message(5) });
    await settle();
    expect(catchUps).toMatchObject([{ room: ROOM, error: { code: 'UNAVAILABLE' } }]);
    expect(caughtUp).toEqual([]);

    await jest.advanceTimersByTimeAsync(1_001);

    expect(caughtUp).toEqual([{ room: ROOM }]);
    expect(seen.map(({ message: m }) => m.seq)).toEqual([2, 3, 4, 5]);
    ws.close();
  });

  it('starts a room without a known position at the lastSeq of the join, to catch up after an outage', async () => {
    let stored = 5;
    const rest = restHistory(() => stored);
    const { ws } = client({ resume: true, fetch: rest.fetch });
    const seen = record(ws, 'chatMessage');
    ws.join(ROOM);
    const first = await connected(ws);
    first.joined(ROOM, 5);
    await settle();
    first.drop();
    stored = 7; // posted while disconnected
    await jest.advanceTimersByTimeAsync(1_001);
    FakeSocket.last.accept();
    FakeSocket.last.joined(ROOM, 7);
    await settle();
    expect(rest.calls).toEqual([5]);
    expect(seen.map(({ message: m }) => m.seq)).toEqual([6, 7]);
    ws.close();
  });

  it('drops a room whose missed messages REST refuses for good, tells the app, and joins it no more', async () => {
    let reads = 0;
    const gone = { code: 'NOT_FOUND', message: 'Room not found', details: [] };
    const fetch = () => {
      reads += 1;
      return Promise.resolve(new Response(JSON.stringify(gone), { status: 404 }));
    };
    const { ws } = client({ resume: true, fetch });
    const lost = record(ws, 'roomLost');
    ws.join(ROOM, { since: 3 });
    const first = await connected(ws);
    first.joined(ROOM, 5);
    await settle();
    expect(lost).toEqual([{ room: ROOM, error: gone }]);

    first.drop();
    await jest.advanceTimersByTimeAsync(60_000);
    FakeSocket.last.accept();
    await settle();
    expect(FakeSocket.last.sentOf('join')).toEqual([]);
    expect(reads).toBe(1);
    ws.close();
  });

  it('asks REST for nothing after a reconnect when the join says nothing was missed', async () => {
    const rest = restHistory(() => 5);
    const { ws } = client({ resume: true, fetch: rest.fetch });
    const seen = record(ws, 'chatMessage');
    ws.join(ROOM, { since: 3 });
    const first = await connected(ws);
    first.joined(ROOM, 5);
    await settle();
    first.drop();
    await jest.advanceTimersByTimeAsync(1_001);
    FakeSocket.last.accept();
    FakeSocket.last.joined(ROOM, 5);
    await settle();
    FakeSocket.last.frame({ type: WsServerFrameType.ChatMessage, room: ROOM, message: message(6) });
    await settle();
    expect(rest.calls).toEqual([3]);
    expect(seen.map(({ message: m }) => m.seq)).toEqual([4, 5, 6]);
    ws.close();
  });

  it('catches up after a reconnect even when a gap fill was under way across it', async () => {
    let stored = 8;
    const rest = slowFirstRestHistory(() => stored);
    const { ws } = client({ resume: true, fetch: rest.fetch });
    const seen = record(ws, 'chatMessage');
    ws.join(ROOM, { since: 5 });
    const first = await connected(ws);
    first.joined(ROOM, 5);
    await settle();
    first.frame({ type: WsServerFrameType.ChatMessage, room: ROOM, message: message(8) });
    await settle();
    first.drop();
    stored = 20; // posted while disconnected
    await jest.advanceTimersByTimeAsync(1_001);
    FakeSocket.last.accept();
    FakeSocket.last.joined(ROOM, 20);
    rest.answerFirst();
    await settle();
    expect(seen.map(({ message: m }) => m.seq)).toEqual(range(6, 20));
    ws.close();
  });

  it('waits for the first live message when the server does not tell the lastSeq of a join', async () => {
    const rest = restHistory(() => 4);
    const { ws } = client({ resume: true, fetch: rest.fetch });
    const seen = record(ws, 'chatMessage');
    ws.join(ROOM);
    const socket = await connected(ws);
    socket.joined(ROOM);
    socket.frame({ type: WsServerFrameType.ChatMessage, room: ROOM, message: message(4) });
    await settle();
    expect(rest.calls).toEqual([]);
    expect(seen.map(({ message: m }) => m.seq)).toEqual([4]);
    ws.close();
  });

  it('stops treating a room as joined when removed from it, and passes the notification on', async () => {
    const rest = restHistory(() => 9);
    const { ws } = client({ resume: true, fetch: rest.fetch });
    const notifications = record(ws, 'notification');
    const seen = record(ws, 'chatMessage');
    ws.join(ROOM);
    ws.join(OTHER_ROOM);
    const first = await connected(ws);
    first.joined(ROOM, 3);
    first.joined(OTHER_ROOM, 0);
    first.frame({ type: WsServerFrameType.Notification, notification: removedFrom(ROOM) });
    expect(notifications).toEqual([removedFrom(ROOM)]);
    first.frame({ type: WsServerFrameType.ChatMessage, room: ROOM, message: message(9) });
    await settle();
    expect(seen).toEqual([]);
    expect(rest.calls).toEqual([]);

    first.drop();
    await jest.advanceTimersByTimeAsync(1_001);
    FakeSocket.last.accept();
    expect(FakeSocket.last.sentOf('join')).toEqual([{ type: 'join', room: OTHER_ROOM }]);
    ws.close();
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
