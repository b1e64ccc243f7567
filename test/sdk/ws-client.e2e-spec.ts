import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import {
  createRoom,
  forgeToken,
  nowSeconds,
  postMessage,
  registerUser,
  type TestUser,
} from '../support/api';
import { metricValue } from '../support/metrics';
import { RawClient } from '../support/raw-ws';
import { startTestApp, type TestApp } from '../support/test-app';
import { WsClient, type MessageJson, type WsClientEvents } from '../../client/src';
import { fullHistory, RestartableService, waitFor, waitForStatus } from './sdk-harness';

jest.setTimeout(120_000);

/** A `ws` WebSocket the test can cut off: while cut, it dials a port nobody listens on. */
class CuttableWebSocket extends WebSocket {
  private static isCut = false;
  private static readonly live = new Set<CuttableWebSocket>();

  constructor(url: string) {
    super(CuttableWebSocket.isCut ? 'ws://127.0.0.1:1/ws' : url);
    CuttableWebSocket.live.add(this);
    this.once('close', () => CuttableWebSocket.live.delete(this));
  }

  static cut(): void {
    CuttableWebSocket.isCut = true;
    for (const socket of CuttableWebSocket.live) socket.terminate();
  }

  static restore(): void {
    CuttableWebSocket.isCut = false;
  }
}

/** Records an event's payloads. */
function record<K extends keyof WsClientEvents>(client: WsClient, event: K): WsClientEvents[K][] {
  const seen: WsClientEvents[K][] = [];
  client.on(event, (payload) => seen.push(payload));
  return seen;
}

describe('WsClient against the real /ws endpoint', () => {
  let app: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let roomId: string;
  let upgrades = 0;
  const clients: WsClient[] = [];

  const client = (
    token: () => string,
    options: Partial<ConstructorParameters<typeof WsClient>[0]> = {},
  ) => {
    const instance = new WsClient({
      url: app.url,
      token,
      WebSocket,
      backoff: { baseMs: 200, capMs: 1_000 },
      ...options,
    });
    clients.push(instance);
    return instance;
  };

  beforeAll(async () => {
    app = await startTestApp('sqlite');
    app.app.getHttpServer().on('upgrade', () => (upgrades += 1));
    ada = await registerUser(app.url);
    bob = await registerUser(app.url);
    roomId = (await createRoom(app.url, ada, { name: 'raw' })).id;
  });
  afterEach(() => clients.splice(0).forEach((instance) => instance.close()));
  afterAll(() => app?.close());

  it('joins, receives chat messages and broadcasts, and queues what is sent before connecting', async () => {
    const adaWs = client(() => ada.token);
    const bobWs = client(() => bob.token);
    const chat = record(bobWs, 'chatMessage');
    const broadcasts = record(bobWs, 'message');
    adaWs.join(roomId);
    bobWs.join(roomId);
    adaWs.broadcast(roomId, { cursor: 1 }); // queued: not connected yet
    const bobJoined = new Promise<void>((resolve) => bobWs.on('joined', () => resolve()));
    bobWs.connect();
    await bobJoined;
    adaWs.connect();
    await waitFor('the queued broadcast', () => broadcasts.length === 1, 10_000);
    expect(broadcasts[0]).toEqual({ room: roomId, payload: { cursor: 1 } });

    await postMessage(app.url, ada, roomId, 'over REST');
    await waitFor('the chat message', () => chat.length === 1, 10_000);
    expect(chat[0].message).toMatchObject({ text: 'over REST', roomId });
  });

  it('on close 4001 asks the token provider once more, then stops: at most 2 connection attempts', async () => {
    const wrongSecret = forgeToken(
      { sub: ada.id, username: ada.username, iat: nowSeconds(), exp: nowSeconds() + 600 },
      { secret: 'not-the-server-secret-0123456789abcdef' },
    );
    let provided = 0;
    const before = upgrades;
    const instance = client(() => {
      provided += 1;
      return wrongSecret;
    });
    instance.connect();
    await waitForStatus(instance, 'unauthorized', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect(upgrades - before).toBeLessThanOrEqual(2);
    expect(provided).toBe(2);
    expect(instance.state).toMatchObject({ status: 'unauthorized' });
  });

  it('recovers with a fresh token when the first one is refused', async () => {
    const expired = forgeToken({
      sub: ada.id,
      username: ada.username,
      iat: nowSeconds() - 120,
      exp: nowSeconds() - 60,
    });
    const tokens = [expired, ada.token];
    const instance = client(() => tokens.shift() ?? ada.token);
    instance.connect();
    await waitForStatus(instance, 'connected', 10_000);
    expect(tokens).toHaveLength(0);
  });

  it('keeps a silent link alive with probes the server answers with pong, and still reports later errors', async () => {
    const frameTypes: string[] = [];
    /** The client's socket, telling the frames of each kind it sends and receives. */
    class Recording extends WebSocket {
      constructor(address: string) {
        super(address);
        this.on('message', (data: Buffer) =>
          frameTypes.push(`in:${JSON.parse(data.toString()).type}`),
        );
      }
      override send(data: string): void {
        frameTypes.push(`out:${JSON.parse(data).type}`);
        super.send(data);
      }
    }
    const instance = client(() => ada.token, {
      heartbeat: { idleMs: 300, timeoutMs: 2_000 },
      WebSocket: Recording as unknown as typeof WebSocket,
    });
    const errors = record(instance, 'error');
    instance.connect();
    await waitForStatus(instance, 'connected');
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(instance.state.status).toBe('connected');
    expect(errors).toEqual([]);
    // Probed again and again on the silent link, each probe answered.
    const probes = frameTypes.filter((type) => type === 'out:ping').length;
    expect(probes).toBeGreaterThanOrEqual(3);
    expect(frameTypes.filter((type) => type === 'in:pong').length).toBeGreaterThanOrEqual(
      probes - 1,
    );

    instance.broadcast('not-a-room', { cursor: 1 });
    await waitFor('the refusal of the broadcast', () => errors.length === 1, 5_000);
    expect(errors[0]).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('drops a room the server refuses for good and says so, without retrying', async () => {
    const instance = client(() => ada.token);
    const lost = record(instance, 'roomLost');
    const missing = randomUUID();
    instance.join(roomId);
    instance.join(missing);
    instance.connect();
    await waitFor('the lost room', () => lost.length === 1, 10_000);
    expect(lost[0]).toMatchObject({ room: missing, error: { code: 'NOT_FOUND' } });
  });

  it('catches up on messages posted during an outage in a room where it had seen none yet', async () => {
    const quietRoom = (await createRoom(app.url, ada, { name: 'quiet' })).id;
    const instance = client(() => ada.token, { WebSocket: CuttableWebSocket });
    const joined = record(instance, 'joined');
    const seen = record(instance, 'chatMessage');
    try {
      instance.join(quietRoom);
      instance.connect();
      await waitFor('the join', () => joined.length === 1, 10_000);

      CuttableWebSocket.cut();
      await waitForStatus(instance, 'reconnecting', 10_000);
      for (const text of ['while away 1', 'while away 2'])
        await postMessage(app.url, ada, quietRoom, text);
      CuttableWebSocket.restore();
      await waitFor('the re-join', () => joined.length === 2, 10_000);
      await postMessage(app.url, ada, quietRoom, 'after');

      await waitFor('every message', () => seen.length >= 3, 10_000);
      const history = await fullHistory(app.url, ada.token, quietRoom);
      expect(seen.map(({ message }) => message)).toEqual(history);
    } finally {
      CuttableWebSocket.restore();
    }
  });
});

describe('WsClient under a join rate limit', () => {
  const JOINS_PER_WINDOW = 6;
  let app: TestApp;
  let ada: TestUser;
  let instance: WsClient | undefined;

  beforeAll(async () => {
    // A connection may hold as many rooms as the budget allows joins; two connections may not.
    app = await startTestApp('sqlite', {
      RATE_LIMIT_CHAT_JOIN: `${JOINS_PER_WINDOW}/2s`,
      MAX_ROOMS_PER_CONNECTION: String(JOINS_PER_WINDOW),
    });
    ada = await registerUser(app.url);
  });
  afterEach(() => instance?.close());
  afterAll(() => app?.close());

  it('retries the join the server refused with RATE_LIMITED until it succeeds, then receives', async () => {
    const rooms: string[] = [];
    for (let i = 0; i < JOINS_PER_WINDOW; i += 1)
      rooms.push((await createRoom(app.url, ada, { name: `limited ${i}` })).id);
    // Another tab of the same user has spent a join of the budget.
    const otherTab = await RawClient.connect(app.url, ada.token);
    await otherTab.request({ type: 'join', room: rooms[0] }, 'joined');
    otherTab.close();
    instance = new WsClient({ url: app.url, token: () => ada.token, WebSocket });
    const joined = record(instance, 'joined');
    const seen = record(instance, 'chatMessage');
    const refusedJoins =
      'realtime_rejected_events_total{transport="ws",event="join",code="RATE_LIMITED"}';
    const refusedBefore = await metricValue(app.url, refusedJoins);
    for (const room of rooms) instance.join(room);
    instance.connect();

    await waitFor(
      'every room joined',
      () => new Set(joined.map((j) => j.room)).size === rooms.length,
      20_000,
    );
    // A join was refused for now, and the client tried it again.
    expect(await metricValue(app.url, refusedJoins)).toBeGreaterThan(refusedBefore);
    const last = rooms[rooms.length - 1];
    await postMessage(app.url, ada, last, 'in the room joined last');
    await waitFor('the message', () => seen.length === 1, 10_000);
    expect(seen[0]).toMatchObject({ room: last, message: { text: 'in the room joined last' } });
  });
});

describe('WsClient across a server restart', () => {
  let service: RestartableService;

  beforeAll(async () => {
    service = await RestartableService.start();
  });
  afterAll(() => service?.dispose());

  it('re-joins and fetches the chat messages it missed, in order, once', async () => {
    const ada = await registerUser(service.url);
    const roomId = (await createRoom(service.url, ada, { name: 'raw-restart' })).id;
    // While `away`, the client cannot reconnect: what is posted then must come from REST.
    let away: Promise<void> | undefined;
    let comeBack = () => undefined as void;
    const historyReads: string[] = [];
    const instance = new WsClient({
      url: service.url,
      token: async () => {
        await away;
        return ada.token;
      },
      WebSocket,
      backoff: { baseMs: 200, capMs: 1_500 },
      fetch: (url: string, init: RequestInit) => {
        historyReads.push(url);
        return fetch(url, init);
      },
    });
    const seen: MessageJson[] = [];
    instance.on('chatMessage', ({ message }) => seen.push(message));
    try {
      const joined = new Promise<void>((resolve) => instance.on('joined', () => resolve()));
      instance.join(roomId);
      instance.connect();
      await joined;
      await postMessage(service.url, ada, roomId, 'before');
      await waitFor('the first message', () => seen.length === 1);

      away = new Promise<void>((resolve) => (comeBack = resolve));
      await service.kill();
      await waitForStatus(instance, 'reconnecting');
      await service.start();
      for (const text of ['while away 1', 'while away 2'])
        await postMessage(service.url, ada, roomId, text);
      comeBack();
      await waitForStatus(instance, 'connected');
      await postMessage(service.url, ada, roomId, 'after');

      await waitFor('every message', () => seen.length >= 4);
      const history = await fullHistory(service.url, ada.token, roomId);
      expect(seen).toEqual(history);
      expect(historyReads).toEqual([expect.stringContaining(`/api/rooms/${roomId}/messages`)]);
    } finally {
      instance.close();
    }
  });
});
