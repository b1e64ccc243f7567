import { WebSocket } from 'ws';
import {
  createRoom,
  forgeToken,
  nowSeconds,
  postMessage,
  registerUser,
  type TestUser,
} from '../support/api';
import { startTestApp, type TestApp } from '../support/test-app';
import { WsClient, type MessageJson, type WsClientEvents } from '../../client/src';
import { fullHistory, RestartableService, waitFor, waitForStatus } from './sdk-harness';

jest.setTimeout(120_000);

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

  it('notices a link that went silent with its probe and the server’s error answer', async () => {
    const instance = client(() => ada.token, { heartbeat: { idleMs: 300, timeoutMs: 2_000 } });
    const errors = record(instance, 'error');
    instance.connect();
    await waitForStatus(instance, 'connected');
    // Probes are answered with VALIDATION_FAILED, which keeps the link alive and is not an error to the app.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(instance.state.status).toBe('connected');
    expect(errors).toEqual([]);
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
    const instance = new WsClient({
      url: service.url,
      token: () => ada.token,
      WebSocket,
      backoff: { baseMs: 200, capMs: 1_500 },
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

      await service.kill();
      await waitForStatus(instance, 'reconnecting');
      await service.start();
      for (const text of ['while away 1', 'while away 2'])
        await postMessage(service.url, ada, roomId, text);
      await waitForStatus(instance, 'connected');
      await postMessage(service.url, ada, roomId, 'after');

      await waitFor('every message', () => seen.length >= 4);
      const history = await fullHistory(service.url, ada.token, roomId);
      expect(seen).toEqual(history);
    } finally {
      instance.close();
    }
  });
});
