import request from 'supertest';
import { DataSource } from 'typeorm';
import { registerUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { startTestApp, type TestApp } from '../support/test-app';

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
        r.route.includes('/api/rooms') || r.route.endsWith('/me') || r.route.includes('events'),
    )) {
      expect({ route, security: operation.security }).toEqual({
        route,
        security: [{ bearer: [] }],
      });
      expect({ route, has401: '401' in operation.responses }).toEqual({ route, has401: true });
    }
    expect(spec.components.schemas.ErrorResponseDto.properties.code.enum).toContain('RATE_LIMITED');
  });

  it('reports readiness with the state of the database', async () => {
    const response = await request(t.url).get('/health/ready').expect(200);
    expect(response.body).toEqual({ status: 'ok', checks: { database: { status: 'up' } } });
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

  it('says 503 UNAVAILABLE when the database is gone, in readiness and on requests', async () => {
    const t = await startTestApp(kind);
    try {
      const user = await registerUser(t.url);
      await t.app.get(DataSource).destroy();
      const ready = await request(t.url).get('/health/ready').expect(503);
      expect(ready.body).toMatchObject({
        code: 'UNAVAILABLE',
        status: 'error',
        checks: { database: { status: 'down' } },
      });
      const response = await request(t.url)
        .get('/api/rooms')
        .set('Authorization', `Bearer ${user.token}`);
      expect(response.status).toBeGreaterThanOrEqual(500);
      expect(response.body).toEqual({
        code: expect.stringMatching(/^(UNAVAILABLE|INTERNAL)$/),
        message: expect.any(String),
        details: [],
      });
      expect(JSON.stringify(response.body)).not.toMatch(/SELECT|INSERT|at \w+ \(/);
    } finally {
      await t.app.close().catch(() => undefined);
      await t.database.drop();
    }
  });
});
