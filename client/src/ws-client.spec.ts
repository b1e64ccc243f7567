import type { ConnectionState } from './connection-state';
import { WsClient, type WebSocketLike } from './ws-client';
import { WsServerFrameType } from './ws-frames';

const ROOM = '0190b0b0-0000-7000-8000-0000000000aa';

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
    first.frame({
      type: 'error',
      code: 'VALIDATION_FAILED',
      message: 'type must be one of…',
      details: [],
    });
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
});
