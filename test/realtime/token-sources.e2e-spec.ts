import request from 'supertest';
import type { PresenceResult } from '@app/contract/socket-events';
import { createRoom, forgeToken, nowSeconds, registerUser, type TestUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { RawClient } from '../support/raw-ws';
import { connectSocket, emitOk, type ClientSocket } from '../support/sockets';
import { openSse, type SseConnection } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

type ConnectError = Error & { data?: unknown };

const OTHER_SECRET = 'another-secret-that-is-long-enough-for-hs256-9876543210';

/** A well-formed, unexpired token of the user, signed with a secret the server does not know. */
const foreignToken = (user: TestUser) =>
  forgeToken(
    { sub: user.id, username: user.username, iat: nowSeconds(), exp: nowSeconds() + 600 },
    { secret: OTHER_SECRET },
  );

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** How the server closed the connection; a connection it keeps open fails the test in 5 s. */
async function closeOf(client: RawClient): Promise<{ code: number; reason: string }> {
  let timer: NodeJS.Timeout | undefined;
  const open = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Still open; received ${JSON.stringify(client.frames)}`)),
      5_000,
    );
  });
  try {
    return await Promise.race([client.closed, open]);
  } finally {
    clearTimeout(timer);
  }
}

describe.each(databaseKinds())('tokens on live connections (%s)', (kind) => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let roomId: string;
  const open: Array<ClientSocket | RawClient | SseConnection> = [];

  beforeAll(async () => {
    t = await startTestApp(kind);
    ada = await registerUser(t.url);
    bob = await registerUser(t.url);
    roomId = (await createRoom(t.url, ada)).id;
  });
  afterEach(() => open.splice(0).forEach((client) => client.close()));
  afterAll(() => t.close());

  const socket = async (token: string | undefined, headers: Record<string, string> = {}) => {
    const connected = await connectSocket(t.url, token, { extraHeaders: headers });
    open.push(connected);
    return connected;
  };
  const refusedSocket = (token: string | undefined, headers: Record<string, string> = {}) =>
    socket(token, headers).then(
      () => {
        throw new Error('connected');
      },
      (error: ConnectError) => error,
    );
  /** Who the server takes the socket for: the one user present in a room it joined alone. */
  const identityOf = async (connected: ClientSocket) => {
    const room = await createRoom(t.url, ada);
    await emitOk(connected, 'chat:join', room.id);
    const present = await emitOk<PresenceResult>(connected, 'room:presence', { roomId: room.id });
    return present.users.map((user) => user.id);
  };
  const raw = (token: string | undefined, headers: Record<string, string> = {}) => {
    const client = RawClient.open(t.url, token, { headers });
    open.push(client);
    return client;
  };
  const sse = async (path: string, token?: string, headers: Record<string, string> = {}) => {
    const query = token === undefined ? '' : `?token=${encodeURIComponent(token)}`;
    const connection = await openSse(`${t.url}${path}${query}`, headers);
    open.push(connection);
    return connection;
  };
  const missingTokenBody = async () => (await sse('/api/events')).body;

  describe('source order: Authorization header, then auth.token, then ?token=', () => {
    it('Socket.IO: a bad header is not rescued by a good auth.token', async () => {
      const error = await refusedSocket(ada.token, bearer(foreignToken(ada)));
      expect(error.message).toBe('Authentication failed');
      expect(error.data).toEqual({
        code: 'UNAUTHORIZED',
        message: expect.any(String),
        details: [],
      });
    });

    it('Socket.IO: takes no ?token=, which the contract keeps for /ws and SSE', async () => {
      const connecting = connectSocket(t.url, undefined, { query: { token: ada.token } });
      await expect(connecting).rejects.toMatchObject({
        message: 'Authentication failed',
        data: { code: 'UNAUTHORIZED' },
      });
    });

    it('Socket.IO: a good header wins over a bad or another user’s auth.token', async () => {
      expect(await identityOf(await socket('garbage', bearer(ada.token)))).toEqual([ada.id]);
      expect(await identityOf(await socket(bob.token, bearer(ada.token)))).toEqual([ada.id]);
    });

    it('/ws: a bad header is not rescued by a good ?token=', async () => {
      const client = raw(ada.token, bearer(foreignToken(ada)));
      expect(await closeOf(client)).toEqual({ code: 4001, reason: 'Unauthorized' });
      expect(client.frames).toEqual([]);
    });

    it('/ws: a good header wins over a bad or another user’s ?token=', async () => {
      expect(await raw('garbage', bearer(ada.token)).next(() => true)).toEqual({
        type: 'connected',
        userId: ada.id,
      });
      expect(await raw(bob.token, bearer(ada.token)).next(() => true)).toEqual({
        type: 'connected',
        userId: ada.id,
      });
    });

    it('SSE: a bad header is not rescued by a good ?token=, and a good header wins', async () => {
      const missing = await missingTokenBody();
      for (const path of ['/api/events', `/api/rooms/${roomId}/events`]) {
        const refused = await sse(path, ada.token, bearer(foreignToken(ada)));
        expect(refused.status).toBe(401);
        expect(refused.body).toEqual(missing);
      }
      const personal = await sse('/api/events', bob.token, bearer(ada.token));
      expect(personal.status).toBe(200);
      expect(JSON.parse((await personal.next(() => true)).data)).toEqual({ userId: ada.id });
      const room = await sse(`/api/rooms/${roomId}/events`, 'garbage', bearer(ada.token));
      expect(room.status).toBe(200);
    });
  });

  describe('refused tokens on new /ws and SSE connections', () => {
    it('refuses a token signed with another secret', async () => {
      const token = foreignToken(ada);
      const client = raw(token);
      expect(await closeOf(client)).toEqual({ code: 4001, reason: 'Unauthorized' });
      expect(client.frames).toEqual([]);
      const missing = await missingTokenBody();
      expect(missing).toEqual({ code: 'UNAUTHORIZED', message: expect.any(String), details: [] });
      for (const path of ['/api/events', `/api/rooms/${roomId}/events`]) {
        const connection = await sse(path, token);
        expect(connection.status).toBe(401);
        expect(connection.body).toEqual(missing);
      }
    });

    it('refuses the token of a deleted user, which worked before', async () => {
      const doomed = await registerUser(t.url);
      const paths = ['/api/events', `/api/rooms/${roomId}/events`];
      const before = await RawClient.connect(t.url, doomed.token);
      before.close();
      for (const path of paths) {
        const connection = await sse(path, doomed.token);
        expect(connection.status).toBe(200);
        connection.close();
      }

      await request(t.url).delete('/api/auth/me').set(bearer(doomed.token)).expect(204);

      const client = raw(doomed.token);
      expect(await closeOf(client)).toEqual({ code: 4001, reason: 'Unauthorized' });
      expect(client.frames).toEqual([]);
      const headerClient = raw(undefined, bearer(doomed.token));
      expect(await closeOf(headerClient)).toEqual({ code: 4001, reason: 'Unauthorized' });
      const missing = await missingTokenBody();
      for (const path of paths) {
        for (const connection of [
          await sse(path, doomed.token),
          await sse(path, undefined, bearer(doomed.token)),
        ]) {
          expect(connection.status).toBe(401);
          expect(connection.body).toEqual(missing);
        }
      }
    });
  });
});
