import {
  createRoom,
  forgeToken,
  nowSeconds,
  registerUser,
  tokenLasting,
  type TestUser,
} from '../support/api';
import { startTestApp, type TestApp } from '../support/test-app';
import { WebSocket } from 'ws';
import { ChatClient, WsClient, type ConnectionState } from '../../client/src';
import { waitFor, waitForStatus } from './sdk-harness';

jest.setTimeout(60_000);

/** The token provider is asked again on every (re)connection, so expiry is not an outage. */
describe('ChatClient token provider', () => {
  let app: TestApp;
  let ada: TestUser;
  let roomId: string;
  const clients: ChatClient[] = [];

  beforeAll(async () => {
    app = await startTestApp('sqlite');
    ada = await registerUser(app.url);
    roomId = (await createRoom(app.url, ada, { name: 'tokens' })).id;
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => app?.close());

  const tokenFor = tokenLasting;

  /** A provider that hands out `first`, then the user's fresh login token; it counts its calls. */
  function provider(first: string, fresh = ada.token) {
    const calls: string[] = [];
    return {
      calls,
      token: () => {
        const token = calls.length === 0 ? first : fresh;
        calls.push(token);
        return token;
      },
    };
  }

  function client(token: () => string) {
    const instance = new ChatClient({
      url: app.url,
      token,
      backoff: { baseMs: 200, capMs: 1_000 },
    });
    const states: ConnectionState[] = [];
    instance.on('state', (state) => states.push(state));
    clients.push(instance);
    return { instance, states };
  }

  it('reconnects with a refreshed token when the server ends a session whose token expired', async () => {
    const tokens = provider(tokenFor(ada, 3));
    const { instance, states } = client(tokens.token);
    instance.connect();
    await instance.join(roomId);
    expect(tokens.calls).toHaveLength(1);

    await waitFor('a second token', () => tokens.calls.length >= 2, 15_000);
    await waitForStatus(instance, 'connected');
    expect(states.filter((s) => s.status === 'connected').length).toBeGreaterThanOrEqual(2);
    expect(states.some((s) => s.status === 'unauthorized')).toBe(false);
    // The room was re-joined on the new connection: sending and receiving still work.
    const received = new Promise((resolve) => instance.on('message', resolve));
    await instance.send(roomId, 'after refresh');
    await expect(received).resolves.toMatchObject({ text: 'after refresh' });
  });

  it('asks the provider again at once when the handshake refuses an already expired token', async () => {
    const tokens = provider(tokenFor(ada, -60));
    const { instance, states } = client(tokens.token);
    instance.connect();
    await waitForStatus(instance, 'connected', 15_000);
    expect(tokens.calls).toHaveLength(2);
    expect(states.some((s) => s.status === 'reconnecting')).toBe(false);
  });

  it('stops as unauthorized when the refreshed token is refused too: no retry storm', async () => {
    const bad = forgeToken(
      { sub: ada.id, username: ada.username, iat: nowSeconds(), exp: nowSeconds() + 600 },
      { secret: 'not-the-server-secret-0123456789abcdef' },
    );
    const tokens = provider(bad, bad);
    const { instance } = client(tokens.token);
    instance.connect();
    await waitForStatus(instance, 'unauthorized', 15_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(tokens.calls).toHaveLength(2);
    expect(instance.state).toMatchObject({
      status: 'unauthorized',
      error: { code: 'UNAUTHORIZED' },
    });
  });

  it('keeps the connection past its first token once handed a fresh one', async () => {
    const tokens = provider(tokenFor(ada, 3));
    const { instance, states } = client(tokens.token);
    instance.connect();
    await instance.join(roomId);
    const fresh = tokenFor(ada, 600);
    await expect(instance.renewToken(fresh)).resolves.toEqual({
      userId: ada.id,
      expiresAt: expect.any(String),
    });

    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect(tokens.calls).toHaveLength(1);
    expect(states.map((state) => state.status)).toEqual(['connecting', 'connected']);
    const received = new Promise((resolve) => instance.on('message', resolve));
    await instance.send(roomId, 'on the first connection');
    await expect(received).resolves.toMatchObject({ text: 'on the first connection' });
  });

  it('rejects a refused token, changing nothing', async () => {
    const { instance } = client(() => ada.token);
    instance.connect();
    await waitForStatus(instance, 'connected');
    await expect(instance.renewToken('garbage')).rejects.toMatchObject({
      body: { code: 'UNAUTHORIZED' },
    });
    expect(instance.state.status).toBe('connected');
  });

  it('hands a token given while not connected to the next connection made with another', async () => {
    const tokens = provider(tokenFor(ada, 3), tokenFor(ada, 3));
    const { instance, states } = client(tokens.token);
    // As when a refresh lands while a reconnection is under way with the token of before.
    await expect(instance.renewToken(tokenFor(ada, 600))).rejects.toMatchObject({
      body: { code: 'UNAVAILABLE' },
    });
    instance.connect();
    await waitForStatus(instance, 'connected');

    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect(tokens.calls).toHaveLength(1);
    expect(states.map((state) => state.status)).toEqual(['connecting', 'connected']);
  });
});

describe('WsClient renewToken', () => {
  let app: TestApp;
  let ada: TestUser;
  const clients: WsClient[] = [];

  beforeAll(async () => {
    app = await startTestApp('sqlite');
    ada = await registerUser(app.url);
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => app?.close());

  /** A client whose provider hands out a 3 s token first, then the login's; what it reports. */
  function shortLivedClient() {
    let calls = 0;
    const first = tokenLasting(ada, 3);
    const instance = new WsClient({
      url: app.url,
      token: () => (calls++ === 0 ? first : ada.token),
      WebSocket,
    });
    clients.push(instance);
    const seen = {
      statuses: [] as string[],
      errors: [] as unknown[],
      authenticated: [] as unknown[],
    };
    instance.on('state', (state) => seen.statuses.push(state.status));
    instance.on('error', (error) => seen.errors.push(error));
    instance.on('authenticated', (event) => seen.authenticated.push(event));
    return { instance, seen, calls: () => calls };
  }

  it('keeps the connection past its first token, and reports refusals as errors naming auth', async () => {
    const { instance, seen, calls } = shortLivedClient();
    const { statuses, errors, authenticated } = seen;
    instance.connect();
    await waitForStatus(instance, 'connected');

    instance.renewToken('garbage');
    await waitFor('the refusal', () => errors.length === 1);
    expect(errors[0]).toMatchObject({ code: 'UNAUTHORIZED', request: 'auth' });
    instance.renewToken(ada.token);
    await waitFor('the renewal', () => authenticated.length === 1);
    expect(authenticated[0]).toEqual({ userId: ada.id, expiresAt: expect.any(String) });

    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect(calls()).toBe(1);
    expect(statuses).toEqual(['connecting', 'connected']);
  });

  it('hands a token given while not connected to the next connection made with another', async () => {
    const { instance, seen, calls } = shortLivedClient();
    const { statuses, authenticated } = seen;

    instance.renewToken(ada.token);
    instance.connect();
    await waitFor('the renewal', () => authenticated.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect(calls()).toBe(1);
    expect(statuses).toEqual(['connecting', 'connected']);
  });
});
