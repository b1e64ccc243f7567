import { request as httpRequest } from 'node:http';
import { Logger } from '@nestjs/common';
import { io } from 'socket.io-client';
import { TokenService } from '@app/auth/token.service';
import { badTokensFor, forgeToken, nowSeconds, registerUser, type TestUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { connectSocket, nextEvent, type ClientSocket } from '../support/sockets';
import { metricValue } from '../support/metrics';
import { startTestApp, type TestApp } from '../support/test-app';

type ConnectError = Error & { data?: { code: string; message: string; details: unknown[] } };

describe.each(databaseKinds())('Socket.IO handshake (%s)', (kind) => {
  let t: TestApp;
  let user: TestUser;
  const open: ClientSocket[] = [];

  beforeAll(async () => {
    t = await startTestApp(kind, { CORS_ORIGINS: 'https://app.example.com' });
    user = await registerUser(t.url);
  });
  afterEach(() => open.splice(0).forEach((socket) => socket.close()));
  afterAll(() => t.close());

  const refused = (token: string | undefined, options = {}): Promise<ConnectError> =>
    connectSocket(t.url, token, options).then(
      (socket) => {
        open.push(socket);
        throw new Error('connected');
      },
      (error: ConnectError) => error,
    );

  it('accepts auth.token and the Authorization header', async () => {
    open.push(await connectSocket(t.url, user.token));
    open.push(
      await connectSocket(t.url, undefined, {
        extraHeaders: { Authorization: `Bearer ${user.token}` },
      }),
    );
  });

  it('refuses missing, malformed, expired, wrongly signed and alg:none tokens the same way', async () => {
    const refusal = await refused(undefined);
    expect(refusal.message).toBe('Authentication failed');
    const missing = refusal.data;
    expect(missing).toEqual({ code: 'UNAUTHORIZED', message: expect.any(String), details: [] });
    for (const [, token] of badTokensFor(user)) {
      const error = await refused(token);
      expect(error.message).toBe('Authentication failed');
      expect(error.data).toEqual(missing);
    }
  });

  it('refuses with INTERNAL a handshake that failed on our side, logging why', async () => {
    const admit = jest
      .spyOn(t.app.get(TokenService), 'admit')
      .mockRejectedValueOnce(new TypeError('tokens.secret is undefined'));
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      expect((await refused(user.token)).data).toEqual({
        code: 'INTERNAL',
        message: 'Internal server error',
        details: [],
      });
      expect(logged).toHaveBeenCalledWith(expect.stringContaining('tokens.secret is undefined'));
    } finally {
      admit.mockRestore();
      logged.mockRestore();
    }
  });

  it('does not take a token from the query string', async () => {
    const error = await refused(undefined, { query: { token: user.token } });
    expect(error.data?.code).toBe('UNAUTHORIZED');
  });

  it('refuses the token of a deleted user', async () => {
    const doomed = await registerUser(t.url);
    await fetch(`${t.url}/api/auth/me`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${doomed.token}` },
    });
    expect((await refused(doomed.token)).data).toEqual((await refused(undefined)).data);
  });

  it('disconnects a socket whose token expires, after an UNAUTHORIZED error event', async () => {
    const shortLived = forgeToken({
      sub: user.id,
      username: user.username,
      iat: nowSeconds(),
      exp: nowSeconds() + 2,
    });
    const socket = await connectSocket(t.url, shortLived);
    open.push(socket);
    const error = nextEvent<{ code: string }>(socket, 'error', () => true, 5_000);
    const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    expect((await error).code).toBe('UNAUTHORIZED');
    expect(await disconnected).toBe('io server disconnect');
  });

  describe('Origin allowlist', () => {
    const withOrigin = (origin: string, transport: 'polling' | 'websocket') =>
      connectSocket(t.url, user.token, {
        transports: [transport],
        extraHeaders: { Origin: origin },
      });

    it.each(['polling', 'websocket'] as const)(
      'refuses a foreign Origin on %s',
      async (transport) => {
        await expect(withOrigin('https://evil.example.net', transport)).rejects.toThrow();
      },
    );

    it('answers a foreign Origin 403 in the contract’s shape, on polling and on upgrade', async () => {
      const forbidden = { code: 'FORBIDDEN', message: 'Origin not allowed', details: [] };
      const polling = await fetch(`${t.url}/socket.io/?EIO=4&transport=polling`, {
        headers: { Origin: 'https://evil.example.net' },
      });
      expect(polling.status).toBe(403);
      expect(await polling.json()).toEqual(forbidden);

      const upgrade = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
        const request = httpRequest(`${t.url}/socket.io/?EIO=4&transport=websocket`, {
          headers: {
            Origin: 'https://evil.example.net',
            Connection: 'Upgrade',
            Upgrade: 'websocket',
            'Sec-WebSocket-Version': '13',
            'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
          },
        });
        request.on('response', (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode, body }));
        });
        request.on('upgrade', () => reject(new Error('upgraded')));
        request.on('error', reject);
        request.end();
      });
      expect(upgrade.status).toBe(403);
      expect(JSON.parse(upgrade.body)).toEqual(forbidden);
    });

    it.each(['polling', 'websocket'] as const)(
      'accepts an allowed Origin and the own origin on %s',
      async (transport) => {
        open.push(await withOrigin('https://app.example.com', transport));
        open.push(await withOrigin(t.url, transport));
      },
    );
  });

  it('opens no socket for a refused handshake', async () => {
    const socket = io(t.url, {
      auth: { token: 'bad' },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    await new Promise((resolve) => socket.once('connect_error', resolve));
    expect(socket.connected).toBe(false);
    socket.close();
    expect(await metricValue(t.url, 'realtime_connections{transport="socket.io"}')).toBe(
      open.filter((s) => s.connected).length,
    );
  });
});
