import request from 'supertest';
import {
  badTokensFor,
  createRoom,
  registerUser,
  tokenLasting,
  type TestUser,
} from '../support/api';
import { TokenService } from '@app/auth/token.service';
import { RoomsService } from '@app/rooms/rooms.service';
import { holdNextCall } from '../support/hold';
import { RawClient } from '../support/raw-ws';
import {
  connectSocket,
  emitAck,
  emitOk,
  nextEvent,
  sleep,
  type ClientSocket,
} from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

/** Long enough to connect and renew in, short enough to wait past. */
const SHORT_LIFE_SECONDS = 3;
/** Long enough for every refusal to be answered before the connection ends. */
const REFUSALS_LIFE_SECONDS = 6;

const tokenOf = tokenLasting;

const expiryOf = (token: string) =>
  new Date(
    (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { exp: number }).exp *
      1000,
  ).toISOString();

/** Every payload of a renewal the validation refuses, named. */
const INVALID_RENEWALS: Array<[string, unknown]> = [
  ['no token', {}],
  ['a numeric token', { token: 42 }],
  ['an empty token', { token: '' }],
  ['an oversized token', { token: 'x'.repeat(4097) }],
  ['an unknown field', { token: 'x', extra: true }],
];

describe('renewing the token of a live connection', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const sockets: ClientSocket[] = [];
  const raws: RawClient[] = [];

  beforeAll(async () => {
    t = await startTestApp('sqlite', { RATE_LIMIT_TOKEN_RENEW: '1000/60s' });
    [ada, bob] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
  });
  afterEach(() => {
    sockets.splice(0).forEach((socket) => socket.close());
    raws.splice(0).forEach((client) => client.close());
  });
  afterAll(() => t.close());

  const socketOf = async (token: string) => {
    const socket = await connectSocket(t.url, token);
    sockets.push(socket);
    return socket;
  };
  const rawOf = async (token: string) => {
    const client = await RawClient.connect(t.url, token);
    raws.push(client);
    return client;
  };
  const post = (room: string, text: string) =>
    request(t.url)
      .post(`/api/rooms/${room}/messages`)
      .set('Authorization', `Bearer ${bob.token}`)
      .send({ text })
      .expect(201);

  describe('Socket.IO (auth:renew)', () => {
    it('keeps the connection, its rooms and presence past the first token', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await socketOf(tokenOf(ada, SHORT_LIFE_SECONDS));
      await emitOk(socket, 'chat:join', { roomId: room.id });
      const fresh = tokenOf(ada, 600);
      expect(await emitOk(socket, 'auth:renew', { token: fresh })).toEqual({
        userId: ada.id,
        expiresAt: expiryOf(fresh),
      });

      await sleep((SHORT_LIFE_SECONDS + 1.5) * 1000);
      expect(socket.connected).toBe(true);
      const delivered = nextEvent<{ text: string }>(socket, 'chat:message');
      await post(room.id, 'still here');
      expect((await delivered).text).toBe('still here');
      const sent = await emitOk<{ text: string }>(socket, 'chat:message', {
        roomId: room.id,
        text: 'me too',
      });
      expect(sent.text).toBe('me too');
      const presence = await emitOk<{ users: Array<{ id: string }> }>(socket, 'room:presence', {
        roomId: room.id,
      });
      expect(presence.users.map((user) => user.id)).toEqual([ada.id]);
    });

    it('refuses bad tokens, another user’s token and invalid payloads, and still ends at the first expiry', async () => {
      const socket = await socketOf(tokenOf(ada, REFUSALS_LIFE_SECONDS));
      const codes: Record<string, string> = {};
      for (const [name, token] of badTokensFor(ada)) {
        const answer = await emitAck(socket, 'auth:renew', { token });
        codes[name] = answer.ok ? 'ok' : answer.error.code;
      }
      const another = await emitAck(socket, 'auth:renew', { token: bob.token });
      for (const [name, payload] of INVALID_RENEWALS) {
        const answer = await emitAck(socket, 'auth:renew', payload);
        codes[name] = answer.ok ? 'ok' : answer.error.code;
      }

      expect(Object.values(codes).every((code) => code !== 'ok')).toBe(true);
      for (const [name] of badTokensFor(ada))
        expect([name, codes[name]]).toEqual([name, 'UNAUTHORIZED']);
      for (const [name] of INVALID_RENEWALS)
        expect([name, codes[name]]).toEqual([name, 'VALIDATION_FAILED']);
      expect(another).toEqual({
        ok: false,
        error: { code: 'FORBIDDEN', message: expect.any(String), details: [] },
      });
      const error = nextEvent<{ code: string }>(socket, 'error', () => true, 8_000);
      const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
      expect((await error).code).toBe('UNAUTHORIZED');
      expect(await disconnected).toBe('io server disconnect');
    });
  });

  describe('raw WebSocket ({ type: "auth" })', () => {
    it('keeps the connection and its rooms past the first token', async () => {
      const room = await createRoom(t.url, ada);
      const client = await rawOf(tokenOf(ada, SHORT_LIFE_SECONDS));
      expect((await client.request({ type: 'join', room: room.id }, 'joined')).type).toBe('joined');
      const fresh = tokenOf(ada, 600);
      expect(await client.request({ type: 'auth', token: fresh }, 'authenticated')).toEqual({
        type: 'authenticated',
        userId: ada.id,
        expiresAt: expiryOf(fresh),
      });

      await sleep((SHORT_LIFE_SECONDS + 1.5) * 1000);
      expect(client.socket.readyState).toBe(client.socket.OPEN);
      await post(room.id, 'still here');
      const delivered = await client.next((frame) => frame.type === 'chat:message');
      expect((delivered.message as { text: string }).text).toBe('still here');
      expect((await client.request({ type: 'ping' }, 'pong')).type).toBe('pong');
    });

    it('renews at once while an earlier frame is held up, rather than be cut at the first expiry waiting behind it', async () => {
      const room = await createRoom(t.url, ada);
      const client = await rawOf(tokenOf(ada, SHORT_LIFE_SECONDS));
      const checking = holdNextCall(t.app.get(RoomsService), 'assertAccessible');
      client.send({ type: 'broadcast', room: room.id, payload: 'held up' });
      await checking.started;

      const fresh = tokenOf(ada, 600);
      expect(await client.request({ type: 'auth', token: fresh }, 'authenticated')).toMatchObject({
        expiresAt: expiryOf(fresh),
      });
      await sleep((SHORT_LIFE_SECONDS + 1.5) * 1000);
      expect(client.socket.readyState).toBe(client.socket.OPEN);
      checking.release();
      expect((await client.request({ type: 'ping' }, 'pong')).type).toBe('pong');
    });

    it('refuses bad tokens, another user’s token and invalid frames, naming the request, and still closes at the first expiry', async () => {
      const client = await rawOf(tokenOf(ada, REFUSALS_LIFE_SECONDS));
      const answers: Array<[string, unknown]> = [];
      for (const [name, token] of badTokensFor(ada))
        answers.push([name, await client.request({ type: 'auth', token }, 'authenticated')]);
      answers.push([
        'another user',
        await client.request({ type: 'auth', token: bob.token }, 'authenticated'),
      ]);
      for (const [name, payload] of INVALID_RENEWALS)
        answers.push([
          name,
          await client.request({ type: 'auth', ...(payload as object) }, 'authenticated'),
        ]);

      const expected = (code: string) => ({
        type: 'error',
        code,
        message: expect.any(String),
        details: expect.any(Array),
        request: 'auth',
      });
      expect(answers).toEqual([
        ...badTokensFor(ada).map(([name]) => [name, expected('UNAUTHORIZED')]),
        ['another user', expected('FORBIDDEN')],
        ...INVALID_RENEWALS.map(([name]) => [name, expected('VALIDATION_FAILED')]),
      ]);
      expect(JSON.stringify(answers)).not.toContain(bob.token);
      expect(await client.closed).toEqual({ code: 4001, reason: 'Unauthorized' });
    });
  });

  it('never shortens a connection’s life: a token expiring sooner leaves it as it was', async () => {
    const lasting = tokenOf(ada, 600);
    const socket = await socketOf(lasting);
    expect(await emitOk(socket, 'auth:renew', { token: tokenOf(ada, SHORT_LIFE_SECONDS) })).toEqual(
      {
        userId: ada.id,
        expiresAt: expiryOf(lasting),
      },
    );
    const client = await rawOf(lasting);
    expect(
      await client.request(
        { type: 'auth', token: tokenOf(ada, SHORT_LIFE_SECONDS) },
        'authenticated',
      ),
    ).toMatchObject({ expiresAt: expiryOf(lasting) });
    await sleep((SHORT_LIFE_SECONDS + 1.5) * 1000);
    expect(socket.connected).toBe(true);
    expect(client.socket.readyState).toBe(client.socket.OPEN);
  });

  it('keeps the longest-lived token when renewals of one connection overlap', async () => {
    const socket = await socketOf(tokenOf(ada, 60));
    const [sooner, later] = [tokenOf(ada, 300), tokenOf(ada, 600)];
    // The first renewal is checked, then held while the second goes all the way through.
    const held = holdNextCall(t.app.get(TokenService), 'renew', { after: true });
    const first = emitOk(socket, 'auth:renew', { token: sooner });
    await held.started;
    expect(await emitOk(socket, 'auth:renew', { token: later })).toMatchObject({
      expiresAt: expiryOf(later),
    });
    held.release();
    expect(await first).toMatchObject({ expiresAt: expiryOf(later) });
  });

  it('counts renewals against their own budget', async () => {
    const limited = await startTestApp('sqlite', { RATE_LIMIT_TOKEN_RENEW: '2/60s' });
    try {
      const carol = await registerUser(limited.url);
      const socket = await connectSocket(limited.url, carol.token);
      sockets.push(socket);
      const renew = () => emitAck(socket, 'auth:renew', { token: tokenOf(carol, 600) });
      const answers = [await renew(), await renew(), await renew()];
      expect(answers.map((answer) => (answer.ok ? 'ok' : answer.error.code))).toEqual([
        'ok',
        'ok',
        'RATE_LIMITED',
      ]);
      const client = await RawClient.connect(limited.url, carol.token);
      raws.push(client);
      const frame = await client.request(
        { type: 'auth', token: tokenOf(carol, 600) },
        'authenticated',
      );
      expect(frame).toMatchObject({ type: 'error', code: 'RATE_LIMITED', request: 'auth' });
      // Other events keep their own budgets.
      expect((await client.request({ type: 'ping' }, 'pong')).type).toBe('pong');
    } finally {
      sockets.splice(0).forEach((socket) => socket.close());
      raws.splice(0).forEach((client) => client.close());
      await limited.close();
    }
  });
});
