import { gzipSync } from 'node:zlib';
import { getMetadataStorage, IS_LENGTH, MAX, MAX_LENGTH, MIN, MIN_LENGTH } from 'class-validator';
import type { Pool } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { LoginDto, RegisterDto } from '@app/auth/dto/credentials.dto';
import { PasswordHasher } from '@app/auth/password-hasher';
import { AppException } from '@app/common/errors/app.exception';
import { IdCursorPageQuery } from '@app/common/pagination/page-query.dto';
import { CHAR_LENGTH } from '@app/common/validators/char-length';
import { DatabaseModule } from '@app/database/database.module';
import { HistoryQuery } from '@app/messages/dto/history.query';
import { MessageBodyDto } from '@app/messages/dto/send-message.dto';
import { AddMemberDto } from '@app/rooms/dto/add-member.dto';
import { CreateRoomDto } from '@app/rooms/dto/create-room.dto';
import type { MessageJson } from '@app/contract/models';
import type { AckResponse } from '@app/contract/socket-events';
import { RoomEventsQuery } from '@app/sse/dto/room-events.query';
import {
  createRoom,
  postMessage,
  registerUser,
  TEST_PASSWORD,
  uniqueUsername,
} from '../support/api';
import { CuttablePostgres } from '../support/cuttable-postgres';
import { databaseKinds, withPostgres } from '../support/databases';
import { connectSocket, emitAck, emitOk, eventually, sleep } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

/** Every DTO a REST route reads from a body; the spec names each schema after its class. */
const REQUEST_BODIES = [RegisterDto, LoginDto, CreateRoomDto, AddMemberDto, MessageBodyDto];

type Lengths = Record<string, { minLength?: number; maxLength?: number }>;

function documentedLengths(properties: Lengths): Lengths {
  const lengths: Lengths = {};
  for (const [field, { minLength, maxLength }] of Object.entries(properties)) {
    if (minLength !== undefined || maxLength !== undefined)
      lengths[field] = { minLength, maxLength };
  }
  return lengths;
}

const validationsOf = (dto: new () => object) =>
  getMetadataStorage().getTargetValidationMetadatas(dto, '', true, false);

function enforcedLengths(dto: new () => object): Lengths {
  const lengths: Lengths = {};
  for (const { name, propertyName, constraints } of validationsOf(dto)) {
    if (name !== CHAR_LENGTH) continue;
    const [minLength, maxLength] = constraints as [number, number];
    lengths[propertyName] = { minLength, maxLength };
  }
  return lengths;
}

/** class-validator's length checks count fewer characters than the database and JSON Schema. */
function validatorsCountingOtherwise(dto: new () => object): string[] {
  return validationsOf(dto)
    .filter(({ name }) => name === IS_LENGTH || name === MIN_LENGTH || name === MAX_LENGTH)
    .map(({ propertyName, name }) => `${propertyName}: ${name}`);
}

/** Every DTO a REST route reads from its query, by route as the spec names it. */
const QUERIES = [
  ['/api/rooms', IdCursorPageQuery],
  ['/api/rooms/{id}/members', IdCursorPageQuery],
  ['/api/rooms/{roomId}/messages', HistoryQuery],
  ['/api/rooms/{id}/events', RoomEventsQuery],
] as const;

type Bounds = Record<string, { minimum?: number; maximum?: number }>;

interface QueryParameter {
  name: string;
  in: string;
  schema?: { minimum?: number; maximum?: number };
}

function documentedBounds(parameters: QueryParameter[]): Bounds {
  const bounds: Bounds = {};
  for (const { name, in: where, schema } of parameters) {
    if (where !== 'query' || !schema) continue;
    const { minimum, maximum } = schema;
    if (minimum !== undefined || maximum !== undefined) bounds[name] = { minimum, maximum };
  }
  return bounds;
}

function enforcedBounds(dto: new () => object): Bounds {
  const bounds: Bounds = {};
  for (const { name, propertyName, constraints } of validationsOf(dto)) {
    if (name !== MIN && name !== MAX) continue;
    bounds[propertyName] ??= {};
    bounds[propertyName][name === MIN ? 'minimum' : 'maximum'] = constraints[0] as number;
  }
  return bounds;
}

describe.each(databaseKinds())('REST edge: errors, docs, health, metrics (%s)', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(() => t.close());

  it('answers an unknown route with NOT_FOUND in the error shape', async () => {
    const response = await request(t.url).get('/api/nowhere').expect(404);
    expect(response.body).toEqual({ code: 'NOT_FOUND', message: expect.any(String), details: [] });
  });

  it('answers malformed JSON with 400 VALIDATION_FAILED', async () => {
    const response = await request(t.url)
      .post('/api/auth/register')
      .set('Content-Type', 'application/json')
      .send('{"username": "ada", ')
      .expect(400);
    expect(response.body).toEqual({
      code: 'VALIDATION_FAILED',
      message: expect.any(String),
      details: [],
    });
  });

  it.each([
    ['an array', '[1, 2]'],
    ['null', 'null'],
  ])('refuses %s as a body', async (_case, body) => {
    const response = await request(t.url)
      .post('/api/auth/login')
      .set('Content-Type', 'application/json')
      .send(body)
      .expect(400);
    expect(response.body.code).toBe('VALIDATION_FAILED');
  });

  it('answers a body over 1 MiB with 413 PAYLOAD_TOO_LARGE', async () => {
    const response = await request(t.url)
      .post('/api/auth/register')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ username: 'big', password: 'x'.repeat(1024 * 1024) }))
      .expect(413);
    expect(response.body).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.any(String),
      details: [],
    });
  });

  it('reads a body just under 1 MiB: its fields are judged, not its size', async () => {
    const body = JSON.stringify({ username: 'big', password: 'x'.repeat(1024 * 1024 - 1024) });
    const response = await request(t.url)
      .post('/api/auth/register')
      .set('Content-Type', 'application/json')
      .send(body)
      .expect(400);
    expect(response.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: [expect.objectContaining({ field: 'password' })],
    });
  });

  /** By fetch: superagent would serialise a Buffer sent as JSON. */
  const postLogin = async (headers: Record<string, string>, body: Buffer | string) => {
    const response = await fetch(`${t.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body,
    });
    return { status: response.status, body: await response.json() };
  };
  const unreadable = { code: 'VALIDATION_FAILED', message: 'Unreadable request body', details: [] };

  it.each([
    ['a corrupt gzip', 'gzip', Buffer.from('{"name":"x"}')],
    ['a corrupt deflate', 'deflate', Buffer.from('{"name":"x"}')],
    ['a corrupt br', 'br', Buffer.from('{"name":"x"}')],
    ['a truncated gzip', 'gzip', gzipSync('{"username":"ada"}').subarray(0, 12)],
  ])('answers %s body with 400 VALIDATION_FAILED', async (_case, encoding, body) => {
    expect(await postLogin({ 'Content-Encoding': encoding }, body)).toEqual({
      status: 400,
      body: unreadable,
    });
  });

  it('reads a well-formed compressed body', async () => {
    const body = gzipSync(JSON.stringify({ username: 'nobody', password: 'whatever1' }));
    const response = await postLogin({ 'Content-Encoding': 'gzip' }, body);
    expect(response).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
  });

  it('answers a compressed body that inflates past 1 MiB with 413 PAYLOAD_TOO_LARGE', async () => {
    const body = gzipSync(
      JSON.stringify({ username: 'big', password: 'x'.repeat(2 * 1024 * 1024) }),
    );
    expect(await postLogin({ 'Content-Encoding': 'gzip' }, body)).toEqual({
      status: 413,
      body: { code: 'PAYLOAD_TOO_LARGE', message: 'Request body is too large', details: [] },
    });
  });

  it.each([
    ['an unsupported content encoding', { 'Content-Encoding': 'compress' }],
    ['an unsupported charset', { 'Content-Type': 'application/json; charset=latin1' }],
  ])('answers %s with 400 VALIDATION_FAILED', async (_case, headers) => {
    expect(await postLogin(headers, '{"username":"ada"}')).toEqual({
      status: 400,
      body: unreadable,
    });
  });

  it('sends a request id with every response', async () => {
    const response = await request(t.url)
      .get('/health/live')
      .set('X-Request-Id', 'trace-123')
      .expect(200);
    expect(response.headers['x-request-id']).toBe('trace-123');
    const generated = await request(t.url).get('/health/live').expect(200);
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('documents every route with its auth and error responses', async () => {
    await request(t.url).get('/api/docs').expect(200).expect('Content-Type', /html/);
    const spec = (await request(t.url).get('/api/docs-json').expect(200)).body;
    const routes = Object.entries(
      spec.paths as Record<
        string,
        Record<string, { security?: unknown[]; responses: Record<string, unknown> }>
      >,
    ).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        route: `${method.toUpperCase()} ${path}`,
        operation,
      })),
    );
    expect(routes.map((r) => r.route)).toEqual(
      expect.arrayContaining([
        'POST /api/auth/register',
        'POST /api/auth/login',
        'POST /api/auth/refresh',
        'GET /api/auth/me',
        'POST /api/rooms',
        'GET /api/rooms',
        'GET /api/rooms/{id}',
        'POST /api/rooms/{id}/members',
        'DELETE /api/rooms/{id}/members/{userId}',
        'GET /api/rooms/{roomId}/messages',
        'POST /api/rooms/{roomId}/messages',
        'GET /api/events',
        'GET /api/rooms/{id}/events',
        'GET /events/{userId}',
        'GET /health/live',
        'GET /health/ready',
        'GET /metrics',
      ]),
    );
    for (const { route, operation } of routes.filter(
      (r) =>
        r.route.includes('/api/rooms') ||
        r.route.endsWith('/me') ||
        r.route.endsWith('/refresh') ||
        r.route.includes('events'),
    )) {
      expect({ route, security: operation.security }).toEqual({
        route,
        security: [{ bearer: [] }],
      });
      expect({ route, has401: '401' in operation.responses }).toEqual({ route, has401: true });
    }
    // Every route of the API reads the database, which may be away.
    for (const { route, operation } of routes.filter(
      (r) => r.route.includes(' /api/') || r.route.includes(' /events/'),
    ))
      expect({ route, has503: '503' in operation.responses }).toEqual({ route, has503: true });
    expect(spec.components.schemas.ErrorResponseDto.properties.code.enum).toContain('RATE_LIMITED');
  });

  it('documents the length limits of the request bodies the contract states', async () => {
    const spec = (await request(t.url).get('/api/docs-json').expect(200)).body;
    const lengths = (schema: string, field: string) => {
      const { minLength, maxLength } = spec.components.schemas[schema].properties[field];
      return [minLength, maxLength];
    };
    expect({
      register: [lengths('RegisterDto', 'username'), lengths('RegisterDto', 'password')],
      login: [lengths('LoginDto', 'username'), lengths('LoginDto', 'password')],
      room: lengths('CreateRoomDto', 'name'),
      message: [lengths('MessageBodyDto', 'text'), lengths('MessageBodyDto', 'clientMsgId')],
    }).toEqual({
      register: [
        [3, 32],
        [8, 128],
      ],
      login: [
        [1, 128],
        [1, 1024],
      ],
      room: [1, 100],
      message: [
        [1, 4000],
        [1, 64],
      ],
    });
  });

  it.each(REQUEST_BODIES.map((dto) => [dto.name, dto] as const))(
    'documents exactly the length limits %s enforces',
    async (_name, dto) => {
      const spec = (await request(t.url).get('/api/docs-json').expect(200)).body;
      expect(documentedLengths(spec.components.schemas[dto.name].properties)).toEqual(
        enforcedLengths(dto),
      );
      expect(validatorsCountingOtherwise(dto)).toEqual([]);
    },
  );

  it.each(QUERIES.map(([route, dto]) => [route, dto] as const))(
    'documents exactly the number bounds the query of GET %s enforces',
    async (route, dto) => {
      const spec = (await request(t.url).get('/api/docs-json').expect(200)).body;
      expect(documentedBounds(spec.paths[route].get.parameters)).toEqual(enforcedBounds(dto));
    },
  );

  it('reports readiness with the state of the database', async () => {
    const response = await request(t.url).get('/health/ready').expect(200);
    expect(response.body).toEqual({
      status: 'ok',
      checks: { database: { status: 'up' }, migrations: { status: 'up' } },
    });
    await request(t.url).get('/health/live').expect(200, { status: 'ok' });
  });

  it('exposes Prometheus metrics with request durations by route', async () => {
    const user = await registerUser(t.url);
    await request(t.url)
      .get('/api/auth/me')
      .set('Authorization', `Bearer ${user.token}`)
      .expect(200);
    const response = await request(t.url)
      .get('/metrics')
      .expect(200)
      .expect('Content-Type', /text\/plain/);
    expect(response.text).toContain('process_cpu_user_seconds_total');
    expect(response.text).toMatch(
      /http_request_duration_seconds_count\{method="GET",route="\/api\/auth\/me",status="200"\} 1/,
    );
    // Without Redis, no series that an alert on 0 would take for an outage.
    expect(response.text).not.toMatch(/^redis_connected /m);
  });
});

describe('REST errors to a page of another origin', () => {
  const ORIGIN = 'https://app.example.com';
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('sqlite', { CORS_ORIGINS: ORIGIN });
  });
  afterAll(() => t.close());

  const post = (origin: string, body: string) =>
    fetch(`${t.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: origin },
      body,
    });

  // The body parser refuses before any route: the browser must still be let read why.
  it.each([
    ['a body over the limit', JSON.stringify({ username: 'x'.repeat(1024 * 1024) }), 413],
    ['malformed JSON', '{"username": ', 400],
    ['bad credentials', JSON.stringify({ username: 'nobody', password: 'whatever1' }), 401],
  ])('lets an allowed origin read the error of %s', async (_case, body, status) => {
    const response = await post(ORIGIN, body);
    expect(response.status).toBe(status);
    expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(await response.json()).toMatchObject({ code: expect.any(String), details: [] });
  });

  it('lets no other origin read it', async () => {
    const response = await post('https://elsewhere.example.com', '{"username": ');
    expect(response.status).toBe(400);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe.each(databaseKinds())('REST rate limits and unavailability (%s)', (kind) => {
  it('limits login attempts per client with 429 RATE_LIMITED', async () => {
    const t = await startTestApp(kind, { THROTTLE_AUTH_LIMIT: '3', THROTTLE_AUTH_TTL_MS: '60000' });
    try {
      for (let attempt = 0; attempt < 3; attempt += 1) {
        await request(t.url)
          .post('/api/auth/login')
          .send({ username: 'nobody', password: 'whatever1' })
          .expect(401);
      }
      const limited = await request(t.url)
        .post('/api/auth/login')
        .send({ username: 'nobody', password: 'whatever1' })
        .expect(429);
      expect(limited.body).toEqual({
        code: 'RATE_LIMITED',
        message: expect.any(String),
        details: [],
      });
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      // Other routes keep their own, larger budget.
      await request(t.url).get('/api/rooms').expect(401);
    } finally {
      await t.close();
    }
  });

  it('spends the address sign-in budget on registrations and failed logins, not on successful ones', async () => {
    const t = await startTestApp(kind, { THROTTLE_AUTH_LIMIT: '3', THROTTLE_AUTH_TTL_MS: '60000' });
    const login = (username: string, password: string) =>
      request(t.url).post('/api/auth/login').send({ username, password });
    try {
      const username = uniqueUsername();
      await request(t.url)
        .post('/api/auth/register')
        .send({ username, password: TEST_PASSWORD })
        .expect(201);
      for (let attempt = 0; attempt < 5; attempt += 1)
        await login(username, TEST_PASSWORD).expect(200);
      // Logins the password threads could not take were judged on nothing: given back too.
      const busy = jest
        .spyOn(t.app.get(PasswordHasher), 'verify')
        .mockRejectedValue(AppException.unavailable('Too many sign-ins at once: retry shortly', 1));
      for (let attempt = 0; attempt < 5; attempt += 1)
        await login(username, TEST_PASSWORD).expect(503);
      busy.mockRestore();
      await login(username, 'wrong-password').expect(401);
      await login('nobody', 'wrong-password').expect(401);

      const limited = await login(username, TEST_PASSWORD).expect(429);
      expect(limited.body).toMatchObject({ code: 'RATE_LIMITED', details: [] });
    } finally {
      await t.close();
    }
  });

  it('counts one budget per client address across every route', async () => {
    const t = await startTestApp(kind, { THROTTLE_DEFAULT_LIMIT: '3' });
    try {
      await request(t.url).get('/api/rooms').expect(401);
      await request(t.url).get('/api/auth/me').expect(401);
      await request(t.url).get('/api/rooms').expect(401);

      const limited = await request(t.url).get('/api/auth/me').expect(429);

      expect(limited.body).toMatchObject({ code: 'RATE_LIMITED', details: [] });
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  });

  it("answers a send over the user's message budget with 429 and when to retry", async () => {
    const t = await startTestApp(kind, { RATE_LIMIT_CHAT_MESSAGE: '1/60s' });
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const send = () =>
        request(t.url)
          .post(`/api/rooms/${room.id}/messages`)
          .set('Authorization', `Bearer ${ada.token}`)
          .send({ text: 'hello' });
      await send().expect(201);

      const limited = await send().expect(429);

      expect(limited.body).toMatchObject({ code: 'RATE_LIMITED', details: [] });
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    } finally {
      await t.close();
    }
  });

  if (kind === 'sqlite') {
    // SQLite has no connection to lose; a closed handle is as near as it gets, and is a fault of
    // the service rather than an outage, so only readiness is held to 503 here.
    it('says 503 UNAVAILABLE in readiness when the database is closed', async () => {
      const t = await startTestApp(kind);
      try {
        await t.app.get(DataSource).destroy();
        const ready = await request(t.url).get('/health/ready').expect(503);
        expect(ready.body).toMatchObject({
          code: 'UNAVAILABLE',
          status: 'error',
          checks: { database: { status: 'down' } },
        });
      } finally {
        await t.app.close().catch(() => undefined);
        await t.database.drop();
      }
    });
  } else {
    it('says 503 UNAVAILABLE when the database is unreachable, in readiness and on requests', async () => {
      const proxy = await CuttablePostgres.start();
      const t = await startTestApp(kind, { DATABASE_URL: proxy.url });
      try {
        const user = await registerUser(t.url);
        const room = await createRoom(t.url, user);
        const auth = { Authorization: `Bearer ${user.token}` };
        await request(t.url).get('/api/auth/me').set(auth).expect(200);

        await proxy.cut();
        const ready = await request(t.url).get('/health/ready').expect(503);
        expect(ready.body).toMatchObject({
          code: 'UNAVAILABLE',
          status: 'error',
          checks: { database: { status: 'down' } },
        });
        // Liveness is the process's alone: no restart for an outage of the database.
        await request(t.url).get('/health/live').expect(200, { status: 'ok' });
        const unavailable = { code: 'UNAVAILABLE', message: expect.any(String), details: [] };
        const answers = {
          'POST messages': await request(t.url)
            .post(`/api/rooms/${room.id}/messages`)
            .set(auth)
            .send({ text: 'lost?' }),
          'GET /api/rooms': await request(t.url).get('/api/rooms').set(auth),
          'GET /api/auth/me': await request(t.url).get('/api/auth/me').set(auth),
        };
        for (const [name, response] of Object.entries(answers)) {
          expect({ name, status: response.status, body: response.body }).toEqual({
            name,
            status: 503,
            body: unavailable,
          });
          expect(JSON.stringify(response.body)).not.toMatch(/SELECT|INSERT|ECONN|at \w+ \(/);
        }

        await proxy.open();
        await eventually(
          async () => (await request(t.url).get('/health/ready')).status === 200,
          20_000,
        );
        const stored = await postMessage(t.url, user, room.id, 'after the outage');
        expect(stored.seq).toBe(1);
      } finally {
        await t.close().finally(() => proxy.cut());
      }
    }, 60_000);

    /** What a test of a send through a proxied database gets: a socket in a room, sending. */
    interface ProxiedSends {
      proxy: CuttablePostgres;
      t: TestApp;
      send(text: string, clientMsgId?: string): Promise<AckResponse<MessageJson>>;
      /** The room's stored messages, as [seq, text]. */
      stored(): Promise<Array<[number, string]>>;
    }

    /** `body` with a joined socket of a fresh user and room, on an app whose database is behind a proxy. */
    async function sendingThroughProxy(
      env: Record<string, string>,
      body: (sends: ProxiedSends) => Promise<void>,
    ): Promise<void> {
      const proxy = await CuttablePostgres.start();
      const t = await startTestApp(kind, { DATABASE_URL: proxy.url, ...env });
      const user = await registerUser(t.url);
      const room = await createRoom(t.url, user);
      const socket = await connectSocket(t.url, user.token);
      try {
        await emitOk(socket, 'chat:join', { roomId: room.id });
        const send = (text: string, clientMsgId?: string) =>
          emitAck<MessageJson>(socket, 'chat:message', { roomId: room.id, text, clientMsgId });
        const stored = async () => {
          const history = await request(t.url)
            .get(`/api/rooms/${room.id}/messages?since=0`)
            .set('Authorization', `Bearer ${user.token}`)
            .expect(200);
          const items = history.body.items as MessageJson[];
          return items.map((message): [number, string] => [message.seq, message.text]);
        };
        await body({ proxy, t, send, stored });
      } finally {
        socket.close();
        await proxy.cut();
        await t.close();
      }
    }

    const UNAVAILABLE_ACK = {
      ok: false,
      error: { code: 'UNAVAILABLE', message: expect.any(String), details: [] },
    };

    it(
      'answers a send whose commit landed but whose answer was lost with UNAVAILABLE; sent again, it is the one stored',
      () =>
        sendingThroughProxy(
          { MESSAGE_WRITE_TIMEOUT_MS: '1500' },
          async ({ proxy, t, send, stored }) => {
            const storedInDatabase = async () => {
              const { rows } = await withPostgres((client) =>
                client.query<{ seq: number; text: string }>(
                  `SELECT seq, text FROM "${t.database.env.DATABASE_SCHEMA}".messages ORDER BY seq`,
                ),
              );
              return rows.map((row) => [row.seq, row.text]);
            };
            expect((await send('before', 'c-0')).ok).toBe(true);

            // The database gets the write (its clientMsgId looked up, then the insert) and
            // commits it; the insert's answer never comes back.
            proxy.muteRepliesOnOpenConnectionsAfter('messages.advance-and-insert');
            expect(await send('answer lost', 'c-1')).toEqual(UNAVAILABLE_ACK);
            expect(await storedInDatabase()).toEqual([
              [1, 'before'],
              [2, 'answer lost'],
            ]);

            // Sent again (on a connection that answers, once the muted ones are given up on):
            // the stored one comes back, not a second copy.
            let again: AckResponse<MessageJson> | undefined;
            await eventually(async () => (again = await send('answer lost', 'c-1')).ok, 20_000);
            expect(again).toMatchObject({ ok: true, data: { seq: 2, text: 'answer lost' } });
            expect(await send('after', 'c-2')).toMatchObject({ ok: true, data: { seq: 3 } });
            expect(await stored()).toEqual([
              [1, 'before'],
              [2, 'answer lost'],
              [3, 'after'],
            ]);
          },
        ),
      60_000,
    );

    it(
      'answers a send the database never got with UNAVAILABLE, and frees its room',
      () =>
        sendingThroughProxy(
          { MESSAGE_WRITE_TIMEOUT_MS: '1500' },
          async ({ proxy, send, stored }) => {
            expect((await send('before', 'c-0')).ok).toBe(true);

            // The connections open now go silent; new ones work.
            proxy.stallOpenConnections();
            expect(await send('unanswered', 'c-1')).toEqual(UNAVAILABLE_ACK);

            // The write that went unanswered is still waiting, and holds the room no more:
            // sends go through as soon as they get a connection that answers.
            await eventually(async () => (await send('after', 'c-2')).ok, 20_000);
            expect((await send('unanswered', 'c-1')).ok).toBe(true);
            expect(await stored()).toEqual([
              [1, 'before'],
              [2, 'after'],
              [3, 'unanswered'],
            ]);
          },
        ),
      60_000,
    );

    it(
      'lets go of the connection of a send given up on, so that silent ones do not fill the pool',
      () =>
        sendingThroughProxy({ MESSAGE_WRITE_TIMEOUT_MS: '1000' }, async ({ proxy, t, send }) => {
          const pool = (t.app.get(DataSource).driver as PostgresDriver).master as Pool;
          expect((await send('before')).ok).toBe(true);
          proxy.stallOpenConnections();
          expect(await send('unanswered')).toMatchObject({
            ok: false,
            error: { code: 'UNAVAILABLE' },
          });

          // Nothing else queries: no connection may stay checked out for the silent write.
          await eventually(() => pool.totalCount - pool.idleCount === 0, 5_000);
        }),
      60_000,
    );

    it('closes pooled connections whose queries went unanswered, so that later requests find ones that answer', async () => {
      const proxy = await CuttablePostgres.start();
      const t = await startTestApp(kind, {
        DATABASE_URL: proxy.url,
        DATABASE_POOL_SIZE: '2',
        DATABASE_QUERY_TIMEOUT_MS: '1000',
      });
      const dataSource = t.app.get(DataSource);
      const pool = (dataSource.driver as PostgresDriver).master as Pool;
      const user = await registerUser(t.url);
      const auth = { Authorization: `Bearer ${user.token}` };
      const listRooms = () => request(t.url).get('/api/rooms').set(auth);
      const createRoomNamed = (name: string) =>
        request(t.url).post('/api/rooms').set(auth).send({ name });
      try {
        // Both connections of the pool open, then silent; new ones work.
        await Promise.all([
          dataSource.query('SELECT pg_sleep(0.2)'),
          dataSource.query('SELECT pg_sleep(0.2)'),
        ]);
        expect(pool.totalCount).toBe(2);
        proxy.stallOpenConnections();

        const [read, write] = await Promise.all([listRooms(), createRoomNamed('unanswered')]);
        const unavailable = { code: 'UNAVAILABLE', message: expect.any(String), details: [] };
        expect([read.status, read.body, write.status, write.body]).toEqual([
          503,
          unavailable,
          503,
          unavailable,
        ]);

        // Left in the pool, the silent connections would fail every request lent them.
        await eventually(async () => (await listRooms()).status === 200, 20_000);
        for (let attempt = 0; attempt < 5; attempt++) {
          expect((await listRooms()).status).toBe(200);
          expect((await createRoomNamed(`answered ${attempt}`)).status).toBe(201);
        }
        await eventually(() => pool.totalCount - pool.idleCount === 0, 5_000);
      } finally {
        await proxy.cut();
        await t.close();
      }
    }, 60_000);

    it('is ready again as soon as new connections work, though an old one stays unanswered', async () => {
      const proxy = await CuttablePostgres.start();
      const t = await startTestApp(kind, { DATABASE_URL: proxy.url });
      try {
        await request(t.url).get('/health/ready').expect(200);

        proxy.stallOpenConnections();
        expect((await request(t.url).get('/health/ready')).status).toBe(503);

        // Each probe that waits in vain closes its connection; the next one takes a new one.
        await eventually(
          async () => (await request(t.url).get('/health/ready')).status === 200,
          30_000,
        );
      } finally {
        await proxy.cut();
        await t.close();
      }
    }, 60_000);

    it('keeps one readiness probe waiting on a database that takes queries and never answers', async () => {
      const proxy = await CuttablePostgres.start();
      const t = await startTestApp(kind, { DATABASE_URL: proxy.url });
      const pool = (t.app.get(DataSource).driver as PostgresDriver).master as Pool;
      try {
        await request(t.url).get('/health/ready').expect(200);
        const opened = proxy.opened;

        proxy.stall();
        const wave = Promise.all(
          Array.from({ length: 20 }, () => request(t.url).get('/health/ready')),
        );
        await sleep(500);
        // The probes wait on the connection of their own they had, not on the app's pool.
        expect({
          opened: proxy.opened,
          checkedOut: pool.totalCount - pool.idleCount,
          queued: pool.waitingCount,
        }).toEqual({ opened, checkedOut: 0, queued: 0 });
        const probes = await wave;
        probes.push(await request(t.url).get('/health/ready'));

        for (const probe of probes) {
          expect(probe.status).toBe(503);
          expect(probe.body).toMatchObject({
            code: 'UNAVAILABLE',
            checks: { database: { status: 'down', message: 'The database did not answer' } },
          });
        }
        // The connection that went unanswered is not used again: the next probe opened another.
        expect(proxy.opened).toBe(opened + 1);
      } finally {
        await proxy.cut();
        await t.close();
      }
    }, 60_000);

    it('shuts down promptly when the database stopped answering after a probe', async () => {
      const proxy = await CuttablePostgres.start();
      const t = await startTestApp(kind, { DATABASE_URL: proxy.url });
      try {
        await request(t.url).get('/health/ready').expect(200);
        proxy.stall();
        // The probe's idle connection gets a second to say goodbye, then is cut.
        const closing = t.app.close().then(() => 'closed');
        expect(await Promise.race([closing, sleep(8_000).then(() => 'still closing')])).toBe(
          'closed',
        );
      } finally {
        await proxy.cut();
        await t.app.close().catch(() => undefined);
        await t.database.drop();
      }
    }, 30_000);

    it('opens no probe connection once the database module has shut down', async () => {
      const proxy = await CuttablePostgres.start();
      const t = await startTestApp(kind, { DATABASE_URL: proxy.url });
      try {
        await request(t.url).get('/health/ready').expect(200);
        // As during a shutdown, before the HTTP server has stopped answering.
        await t.app.get(DatabaseModule).onApplicationShutdown();
        const opened = proxy.opened;

        const probe = await request(t.url).get('/health/ready');
        expect({ status: probe.status, database: probe.body.checks?.database?.status }).toEqual({
          status: 503,
          database: 'down',
        });
        expect(proxy.opened).toBe(opened);
      } finally {
        await proxy.cut();
        await t.close();
      }
    }, 30_000);

    it('stays ready while slow reads hold every connection of the pool', async () => {
      const t = await startTestApp(kind, { DATABASE_POOL_SIZE: '2' });
      const dataSource = t.app.get(DataSource);
      try {
        await request(t.url).get('/health/ready').expect(200);
        const slowReads = [
          dataSource.query('SELECT pg_sleep(4)'),
          dataSource.query('SELECT pg_sleep(4)'),
        ];
        const pool = (dataSource.driver as PostgresDriver).master as Pool;
        await eventually(() => pool.totalCount - pool.idleCount === 2, 10_000);

        const probe = await request(t.url).get('/health/ready');
        expect({ status: probe.status, body: probe.body }).toEqual({
          status: 200,
          body: {
            status: 'ok',
            checks: { database: { status: 'up' }, migrations: { status: 'up' } },
          },
        });
        await Promise.all(slowReads);
      } finally {
        await t.close();
      }
    }, 30_000);
  }
});
