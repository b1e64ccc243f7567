import fc from 'fast-check';
import { WebSocket } from 'ws';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ERROR_CODES } from '@app/common/errors/error-code';
import type { MessageJson } from '@app/contract/models';
import { badTokensFor, createRoom, registerUser, type TestUser } from '../support/api';
import { INPUT_BOUNDS } from '@app/common/pipes/input-bounds';
import { validateFrame } from '@app/raw-ws/frame-parser';
import { databaseKinds } from '../support/databases';
import { RawClient } from '../support/raw-ws';
import { collect, connectSocket, emitAck, type ClientSocket } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

const RUNS = 60;

/** Text no database stores as sent: any code point (NUL and other controls included) and lone surrogates. */
const hostileText = fc.string({
  unit: fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
  ),
  minLength: 1,
  maxLength: 12,
});

/**
 * Any JSON value, and near-misses of a valid body: each field replaced by
 * something of another kind, or by hostile text.
 */
function payloads(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const mutated = fc
    .record(
      Object.fromEntries(
        Object.keys(valid).map((key) => [
          key,
          fc.oneof(fc.constant(valid[key]), fc.anything(), hostileText),
        ]),
      ),
    )
    .chain((body) =>
      fc.oneof(
        fc.constant(body),
        fc.dictionary(fc.string(), fc.jsonValue()).map((extra) => ({ ...body, ...extra })),
      ),
    );
  return fc.oneof(fc.jsonValue(), mutated, fc.string(), fc.constant(null));
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Characters as the contract counts them: code points. */
const chars = (text: string) => [...text].length;

/** Text both databases store as sent: no lone surrogate (it is not Unicode), no NUL. */
const storable = (text: string) =>
  !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text) &&
  !text.includes('\u0000');

/**
 * Whether the contract takes this body of `POST /api/rooms/:id/messages`,
 * as it reaches the server (JSON): written from PROTOCOL.md and the README
 * (no other field, `text` 1–4000 characters once trimmed, an optional
 * `clientMsgId` of at most 64, `null` or `""` for it being none), not from
 * the service's DTO.
 */
function isValidMessageBody(sent: unknown): boolean {
  if (!isObject(sent)) return false;
  const { text, clientMsgId, ...others } = sent;
  if (Object.keys(others).length > 0 || typeof text !== 'string') return false;
  const trimmed = text.trim();
  if (chars(trimmed) < 1 || chars(trimmed) > 4000 || !storable(trimmed)) return false;
  if (clientMsgId === undefined || clientMsgId === null || clientMsgId === '') return true;
  return typeof clientMsgId === 'string' && chars(clientMsgId) <= 64 && storable(clientMsgId);
}

const errorShape = {
  code: expect.stringMatching(new RegExp(`^(${ERROR_CODES.join('|')})$`)),
  message: expect.any(String),
  details: expect.any(Array),
};

describe.each(databaseKinds())('fuzzed input (%s)', (kind) => {
  let t: TestApp;
  let user: TestUser;
  let roomId: string;
  let socket: ClientSocket;

  beforeAll(async () => {
    t = await startTestApp(kind, {
      RATE_LIMIT_CHAT_MESSAGE: '1000000/1s',
      RATE_LIMIT_CHAT_JOIN: '1000000/1s',
      RATE_LIMIT_CHAT_TYPING: '1000000/1s',
      RATE_LIMIT_ROOM_PRESENCE: '1000000/1s',
      RATE_LIMIT_TOKEN_RENEW: '1000000/1s',
      RATE_LIMIT_USER_LOOKUP: '1000000/1s',
    });
    user = await registerUser(t.url);
    roomId = (await createRoom(t.url, user)).id;
    socket = await connectSocket(t.url, user.token);
  });
  afterAll(async () => {
    socket.close();
    await t.close();
  });

  /** Rows of a table: what a route stores, to be matched against what it accepted. */
  const rowsOf = (table: 'users' | 'rooms') =>
    t.app
      .get(DataSource)
      .query<Array<{ count: string | number }>>(`SELECT COUNT(*) AS count FROM ${table}`)
      .then(([row]) => Number(row.count));

  const routes: Array<{
    method: 'post' | 'get';
    path: () => string;
    valid: () => Record<string, unknown>;
    query?: boolean;
    /** The table each accepted input adds one row to. */
    stores?: 'users' | 'rooms';
    /** Tells apart two entries of one route. */
    label?: string;
  }> = [
    {
      method: 'post',
      path: () => '/api/auth/register',
      valid: () => ({ username: 'fuzzed_user', password: 'password-123' }),
      stores: 'users',
    },
    {
      method: 'post',
      path: () => '/api/auth/login',
      valid: () => ({ username: user.username, password: 'password-123' }),
    },
    {
      method: 'post',
      path: () => '/api/rooms',
      valid: () => ({ name: 'fuzz', isPrivate: false }),
      stores: 'rooms',
    },
    {
      method: 'post',
      path: () => `/api/rooms/${roomId}/members`,
      valid: () => ({ userId: user.id }),
    },
    {
      method: 'post',
      path: () => `/api/rooms/${roomId}/messages`,
      valid: () => ({ text: 'hello', clientMsgId: 'c-1' }),
    },
    {
      method: 'get',
      path: () => `/api/rooms/${roomId}/messages`,
      valid: () => ({ since: '1', limit: '10' }),
      query: true,
    },
    {
      method: 'get',
      path: () => `/api/rooms/${roomId}/messages`,
      label: 'backwards',
      valid: () => ({ before: '5', limit: '10' }),
      query: true,
    },
    {
      method: 'get',
      path: () => `/api/rooms/${roomId}/members`,
      valid: () => ({ limit: '5', cursor: user.id }),
      query: true,
    },
    {
      method: 'get',
      path: () => '/api/users',
      valid: () => ({ username: user.username }),
      query: true,
    },
    { method: 'get', path: () => '/api/rooms', valid: () => ({ limit: '5' }), query: true },
    {
      method: 'get',
      path: () => '/api/rooms',
      label: 'after a cursor',
      valid: () => ({ limit: '5', cursor: roomId }),
      query: true,
    },
  ];

  const nameOf = (route: (typeof routes)[number]) =>
    `${route.method.toUpperCase()} ${route.path()}${route.label ? ` (${route.label})` : ''}`;

  it.each(routes.map((route) => [nameOf(route), route] as const))(
    '%s answers every input with success or the error shape, never a 500, storing only what it accepts',
    async (_name, route) => {
      const rowsBefore = route.stores && (await rowsOf(route.stores));
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(payloads(route.valid()), async (payload) => {
          const agent = request(t.url);
          const call = (
            route.method === 'get' ? agent.get(route.path()) : agent.post(route.path())
          ).set('Authorization', `Bearer ${user.token}`);
          const response = route.query
            ? await call.query(
                typeof payload === 'object' && payload !== null
                  ? (payload as Record<string, string>)
                  : {},
              )
            : await call.set('Content-Type', 'application/json').send(JSON.stringify(payload));
          expect(response.status).toBeLessThan(500);
          if (response.status >= 400) expect(response.body).toEqual(errorShape);
          else accepted += 1;
        }),
        { numRuns: RUNS },
      );
      if (route.stores) expect((await rowsOf(route.stores)) - rowsBefore!).toBe(accepted);
    },
  );

  it.each(routes.filter((route) => route.method === 'post').map((route) => [nameOf(route), route]))(
    '%s answers a body that is not JSON with 400 VALIDATION_FAILED, storing nothing',
    async (_name, route) => {
      const rowsBefore = route.stores && (await rowsOf(route.stores));
      await fc.assert(
        fc.asyncProperty(fc.string({ minLength: 1 }), async (body) => {
          fc.pre(!parsesAsJson(body));
          const response = await request(t.url)
            .post(route.path())
            .set('Authorization', `Bearer ${user.token}`)
            .set('Content-Type', 'application/json')
            .send(body);
          expect({ status: response.status, body: response.body }).toEqual({
            status: 400,
            body: { ...errorShape, code: 'VALIDATION_FAILED' },
          });
        }),
        { numRuns: RUNS },
      );
      if (route.stores) expect(await rowsOf(route.stores)).toBe(rowsBefore);
    },
  );

  it('stores a message for exactly the valid inputs, as sent and acknowledged', async () => {
    const fresh = await createRoom(t.url, user);
    /** By id: a clientMsgId sent again is a retry, answered with the message stored first. */
    const acknowledged = new Map<string, MessageJson>();
    let sends = 0;
    await fc.assert(
      fc.asyncProperty(payloads({ text: 'hello', clientMsgId: 'c' }), async (payload) => {
        sends += 1;
        // A valid id is made unique; a mutated one goes as it is.
        const body =
          typeof payload === 'object' &&
          payload !== null &&
          (payload as { clientMsgId?: unknown }).clientMsgId === 'c'
            ? { ...payload, clientMsgId: `c-${sends}` }
            : payload;
        const json = JSON.stringify(body);
        const response = await request(t.url)
          .post(`/api/rooms/${fresh.id}/messages`)
          .set('Authorization', `Bearer ${user.token}`)
          .set('Content-Type', 'application/json')
          .send(json);
        const sent: unknown = json === undefined ? undefined : JSON.parse(json);
        expect({ body: sent, accepted: response.status === 201 }).toEqual({
          body: sent,
          accepted: isValidMessageBody(sent),
        });
        if (response.status !== 201) return expect(response.body).toEqual(errorShape);
        const message = response.body as MessageJson;
        const original = acknowledged.get(message.id);
        if (original) return expect(message).toEqual(original);
        expect(message.text).toBe((sent as { text: string }).text.trim());
        acknowledged.set(message.id, message);
      }),
      { numRuns: RUNS * 2 },
    );
    const stored = await request(t.url)
      .get(`/api/rooms/${fresh.id}/messages?limit=200`)
      .set('Authorization', `Bearer ${user.token}`);
    expect([...stored.body.items].reverse()).toEqual(
      [...acknowledged.values()].sort((a, b) => a.seq - b.seq),
    );
  });

  it.each([
    ['chat:join', () => ({ roomId, since: 0 })],
    ['chat:message', () => ({ roomId, text: 'hi', clientMsgId: 'x' })],
    ['chat:leave', () => ({ roomId })],
    ['chat:typing', () => ({ roomId })],
    ['room:presence', () => ({ roomId })],
    ['auth:renew', () => ({ token: user.token })],
  ])('%s acks every input with ok or the error shape, never INTERNAL', async (event, valid) => {
    await fc.assert(
      fc.asyncProperty(payloads(valid()), async (payload) => {
        const answer = await emitAck(socket, event, payload);
        if (!answer.ok) {
          expect(answer.error).toEqual(errorShape);
          expect(answer.error.code).not.toBe('INTERNAL');
        }
      }),
      { numRuns: RUNS },
    );
    expect(socket.connected).toBe(true);
  });

  /** Events that change nothing: sent twice, they are judged alike. */
  const statelessEvents: Array<['chat:typing' | 'room:presence', () => Record<string, unknown>]> = [
    ['chat:typing', () => ({ roomId })],
    ['room:presence', () => ({ roomId })],
  ];

  it.each(statelessEvents)(
    '%s sent without an ack answers as it would with one: the same error, as an error event',
    async (event, valid) => {
      const errors = collect<unknown>(socket, 'error');
      await fc.assert(
        fc.asyncProperty(payloads(valid()), async (payload) => {
          errors.length = 0;
          // Fuzzed: not of the type the event is declared with.
          socket.emit(event, payload as never);
          // The same again with an ack: its answer comes after anything the first brought.
          const answer = await emitAck(socket, event, payload);
          expect(errors).toEqual(answer.ok ? [] : [answer.error]);
        }),
        { numRuns: RUNS },
      );
      expect(socket.connected).toBe(true);
    },
  );

  it('stores a Socket.IO message for exactly the chat:message events it acknowledges', async () => {
    const fresh = await createRoom(t.url, user);
    let acknowledged = 0;
    await fc.assert(
      fc.asyncProperty(payloads({ roomId: fresh.id, text: 'hi' }), async (payload) => {
        const answer = await emitAck(socket, 'chat:message', payload);
        if (answer.ok && (answer.data as { roomId?: string }).roomId === fresh.id)
          acknowledged += 1;
      }),
      { numRuns: RUNS },
    );
    const stored = await request(t.url)
      .get(`/api/rooms/${fresh.id}/messages?limit=200`)
      .set('Authorization', `Bearer ${user.token}`);
    expect(stored.body.items).toHaveLength(acknowledged);
  });

  /** Any bytes, percent-encoded: invalid UTF-8, NUL and slashes included. */
  const percentEncodedBytes = fc
    .uint8Array({ minLength: 1, maxLength: 12 })
    .map((bytes) => [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join(''));

  /** A path segment or query value as a client might send it: valid, another kind of id, text or bytes. */
  const segment = (valid: () => string) =>
    fc.oneof(
      fc.constant(null).map(() => valid()),
      fc.string({ minLength: 1 }).map(encodeURIComponent),
      fc.uuid(),
      fc.nat().map(String),
      percentEncodedBytes,
    );

  /** A bearer value: the user's own token, a bad one, or hostile text. */
  const bearer = () =>
    fc.oneof(
      fc.constant(user.token),
      fc.constantFrom(...badTokensFor(user).map(([, token]) => token)),
      fc.string(),
    );

  /**
   * The status of a request, and its body unless it is an event stream,
   * which is left as soon as its answer begins.
   */
  async function answerOf(
    method: string,
    path: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body?: unknown }> {
    const abort = new AbortController();
    const response = await fetch(`${t.url}${path}`, { method, headers, signal: abort.signal });
    if (response.headers.get('content-type')?.startsWith('text/event-stream')) {
      abort.abort();
      return { status: response.status };
    }
    return { status: response.status, body: await response.json().catch(() => undefined) };
  }

  it.each([
    ['GET /api/rooms/:id', () => fc.tuple(segment(() => roomId)).map(([id]) => `/api/rooms/${id}`)],
    [
      'GET /api/rooms/:id/messages',
      () => fc.tuple(segment(() => roomId)).map(([id]) => `/api/rooms/${id}/messages`),
    ],
    [
      'GET /api/rooms/:id/members',
      () => fc.tuple(segment(() => roomId)).map(([id]) => `/api/rooms/${id}/members`),
    ],
    [
      'DELETE /api/rooms/:id/members/:userId',
      () =>
        fc
          .tuple(
            segment(() => roomId),
            segment(() => '01a21548-0000-7000-8000-000000000000'),
          )
          .map(([id, member]) => `/api/rooms/${id}/members/${member}`),
    ],
    [
      'GET /api/rooms/:id/events',
      () =>
        fc
          .tuple(
            segment(() => roomId),
            segment(() => '0'),
          )
          .map(([id, since]) => `/api/rooms/${id}/events?since=${since}`),
    ],
    ['GET /events/:userId', () => fc.tuple(segment(() => user.id)).map(([id]) => `/events/${id}`)],
  ])(
    '%s answers fuzzed path and query values with success or the error shape',
    async (name, paths) => {
      const method = name.split(' ')[0];
      await fc.assert(
        fc.asyncProperty(paths(), async (path) => {
          const answer = await answerOf(method, path, { Authorization: `Bearer ${user.token}` });
          expect(answer.status).toBeLessThan(500);
          if (answer.status >= 400) expect(answer.body).toEqual(errorShape);
        }),
        { numRuns: RUNS },
      );
    },
  );

  it.each([
    ['POST', '/api/auth/refresh'],
    ['GET', '/api/auth/me'],
    ['GET', '/api/events'],
  ])(
    '%s %s answers fuzzed bearer tokens and Last-Event-ID values with success or the error shape',
    async (method, path) => {
      await fc.assert(
        fc.asyncProperty(
          bearer(),
          fc.oneof(fc.string(), hostileText, fc.nat().map(String)),
          async (token, lastEventId) => {
            const headers: Record<string, string> = {
              Authorization: `Bearer ${token.replace(/[^\x20-\x7e]/g, '')}`,
              'Last-Event-ID': lastEventId.replace(/[^\x20-\x7e]/g, ''),
            };
            const answer = await answerOf(method, path, headers);
            expect(answer.status).toBeLessThan(500);
            if (answer.status >= 400) expect(answer.body).toEqual(errorShape);
          },
        ),
        { numRuns: RUNS },
      );
    },
  );

  it('/ws answers every fuzzed frame once, with its reply or the error shape, never INTERNAL, and stays open', async () => {
    const raw = await RawClient.connect(t.url, user.token);
    try {
      const frames = fc.oneof(
        payloads({ type: 'join', room: roomId }),
        payloads({ type: 'leave', room: roomId }),
        payloads({ type: 'broadcast', room: roomId, payload: { x: 1 } }),
        payloads({ type: 'ping' }),
        payloads({ type: 'auth', token: user.token }),
        fc.string(),
      );
      // A room no fuzzed frame names: the answer to a leave of it marks the end of the answers.
      const marker = '01a24f00-0000-7000-8000-00000000beef';
      await fc.assert(
        fc.asyncProperty(frames, async (frame) => {
          raw.frames.length = 0;
          raw.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
          raw.send({ type: 'leave', room: marker });
          await raw.next((received) => received.room === marker);
          const answers = [...raw.frames];
          // One answer to every frame (`joined`, `left`, `pong`, `authenticated` or the error),
          // but a valid broadcast, which only the other members hear of.
          const validBroadcast =
            isObject(frame) &&
            frame.type === 'broadcast' &&
            (await validateFrame(frame).then(
              () => true,
              () => false,
            ));
          expect(answers.length).toBe(validBroadcast ? 0 : 1);
          for (const received of answers.filter((f) => f.type === 'error')) {
            const { type: _type, request: _request, room: _room, ...body } = received;
            expect(body).toEqual(errorShape);
            expect(body.code).not.toBe('INTERNAL');
          }
          expect(raw.socket.readyState).toBe(WebSocket.OPEN);
        }),
        { numRuns: RUNS * 2 },
      );
    } finally {
      raw.close();
    }
  });

  describe('input with more keys than INPUT_BOUNDS allows', () => {
    /** `{ ...fields, k0: 0, k1: 1, … }`: copying it would take time that grows with the square of its keys. */
    const withKeys = (count: number, fields: Record<string, unknown> = {}) => ({
      ...fields,
      ...Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, index])),
    });
    const refusal = {
      code: 'VALIDATION_FAILED',
      message: `Input may hold at most ${INPUT_BOUNDS.keys} keys`,
      details: [],
    };

    it('is refused over REST before authentication, whatever its size', async () => {
      const body = withKeys(60_000, { username: user.username, password: 'password-123' });
      const response = await request(t.url)
        .post('/api/auth/login')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify(body));
      expect(response.status).toBe(400);
      expect(response.body).toEqual(refusal);
    });

    it('passes in a valid /ws broadcast payload, which only the frame size bounds', async () => {
      const [sender, peer] = await Promise.all([
        RawClient.connect(t.url, user.token),
        RawClient.connect(t.url, user.token),
      ]);
      try {
        for (const client of [sender, peer])
          await client.request({ type: 'join', room: roomId }, 'joined');
        const payload = { ...withKeys(2_000), list: new Array(INPUT_BOUNDS.items + 1).fill(0) };
        sender.send({ type: 'broadcast', room: roomId, payload });
        expect(await peer.next((f) => f.type === 'message')).toEqual({
          type: 'message',
          room: roomId,
          payload,
        });
      } finally {
        sender.close();
        peer.close();
      }
    });

    it('is refused on Socket.IO and /ws, within one packet', async () => {
      const join = withKeys(5_000, { roomId });
      expect(await emitAck(socket, 'chat:join', join)).toEqual({ ok: false, error: refusal });
      const raw = await RawClient.connect(t.url, user.token);
      try {
        const frame = withKeys(5_000, { type: 'join', room: roomId });
        expect(await raw.request(frame, 'joined')).toEqual({
          type: 'error',
          ...refusal,
          request: 'join',
          room: roomId,
        });
      } finally {
        raw.close();
      }
    });
  });
});
