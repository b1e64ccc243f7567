/**
 * deploy/nginx.conf run by a real nginx in front of the service, and in
 * front of no replica at all, so that what compose's proxy does for each
 * transport is checked, not only how the file reads.
 */
import request from 'supertest';
import { registerUser, type TestUser } from '../support/api';
import { nginxAvailable, startNginx, type RunningNginx } from '../support/nginx';
import { RawClient } from '../support/raw-ws';
import { connectSocket, emitOk } from '../support/sockets';
import { openSse } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

const describeWithNginx = nginxAvailable() ? describe : describe.skip;

const UNAVAILABLE = {
  code: 'UNAVAILABLE',
  message: 'Service temporarily unavailable',
  details: [],
};

describeWithNginx('deploy/nginx.conf', () => {
  describe('when no replica answers', () => {
    let proxy: RunningNginx;

    beforeAll(async () => {
      proxy = await startNginx();
    });
    afterAll(() => proxy?.stop());

    it.each([
      ['/api/events', {}],
      ['/api/events/', {}],
      ['/api/rooms/r/events/', {}],
      // Behind HTTP Basic auth, the browser sends the site's credentials with it.
      ['/api/events', { Authorization: 'Basic c3RhZmY6c2VjcmV0' }],
    ])(
      'tells a browser EventSource on %s (%j) to come back, as a stream, since it stops for good on a status',
      async (path, headers) => {
        const response = await fetch(`${proxy.url}${path}?token=t`, {
          headers: { Accept: 'text/event-stream', ...headers },
        });
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
        expect(response.headers.get('cache-control')).toBe('no-cache');
        const text = await response.text();
        expect(text).toMatch(/^retry: (\d+)\nevent: refused\ndata: (.*)\n\n$/);
        const [, retryMs, data] = /^retry: (\d+)\nevent: refused\ndata: (.*)\n\n$/.exec(text)!;
        expect(Number(retryMs)).toBeGreaterThanOrEqual(5000);
        expect(Number(retryMs)).toBeLessThanOrEqual(9500);
        expect(JSON.parse(data)).toEqual(UNAVAILABLE);
      },
    );

    it('spreads the wait of EventSources refused together', async () => {
      const waits = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const response = await fetch(`${proxy.url}/events/u?token=t`, {
            headers: { Accept: 'Text/Event-Stream' },
          });
          return /^retry: (\d+)/.exec(await response.text())?.[1];
        }),
      );
      expect(waits.every((wait) => wait !== undefined)).toBe(true);
      expect(new Set(waits).size).toBeGreaterThan(3);
    });

    it('answers a body over the limit on an event-stream route in the contract’s error shape', async () => {
      const response = await fetch(`${proxy.url}/api/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: 'x'.repeat(1024 * 1024 + 1),
      });
      expect(response.status).toBe(413);
      expect(await response.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    });

    it.each([
      [
        'a client with an Authorization header',
        '/api/rooms/r/events',
        { Authorization: 'Bearer t', Accept: 'text/event-stream' },
      ],
      ['a client that asks for JSON', '/events/u?token=t', { Accept: 'application/json' }],
      ['a REST request', '/api/rooms', {}],
    ])('answers %s 503 in the contract’s error shape', async (_case, path, headers) => {
      const response = await fetch(`${proxy.url}${path}`, { headers });
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual(UNAVAILABLE);
    });
  });

  describe('in front of the service', () => {
    let t: TestApp;
    let proxy: RunningNginx;
    let ada: TestUser;

    beforeAll(async () => {
      t = await startTestApp('sqlite', { TRUST_PROXY: '1' });
      proxy = await startNginx(Number(new URL(t.url).port));
      ada = await registerUser(proxy.url);
    });
    afterAll(async () => {
      await proxy?.stop();
      await t?.close();
    });

    it('streams SSE unbuffered: the personal stream’s first event arrives at once', async () => {
      const stream = await openSse(`${proxy.url}/api/events?token=${ada.token}`, {
        Accept: 'text/event-stream',
      });
      try {
        expect(stream.status).toBe(200);
        const connected = await stream.next((event) => event.event === 'connected', 2_000);
        expect(JSON.parse(connected.data)).toEqual({ userId: ada.id });
      } finally {
        stream.close();
      }
    });

    it('upgrades /ws and Socket.IO', async () => {
      const raw = await RawClient.connect(proxy.url, ada.token);
      const socket = await connectSocket(proxy.url, ada.token);
      try {
        expect(await raw.request({ type: 'ping' }, 'pong')).toEqual({ type: 'pong' });
        const room = await request(proxy.url)
          .post('/api/rooms')
          .set('Authorization', `Bearer ${ada.token}`)
          .send({ name: 'through the proxy' })
          .expect(201);
        await emitOk(socket, 'chat:join', room.body.id);
      } finally {
        raw.close();
        socket.close();
      }
    });

    it('answers a body over the limit itself, in the contract’s error shape', async () => {
      const response = await request(proxy.url)
        .post('/api/auth/login')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ username: 'x', password: 'y'.repeat(1024 * 1024) }));
      expect(response.status).toBe(413);
      expect(response.body).toEqual({
        code: 'PAYLOAD_TOO_LARGE',
        message: 'Request body is too large',
        details: [],
      });
    });
  });
  describe('behind a load balancer, with the lines for it taken in', () => {
    const BUDGET = 2;
    let t: TestApp;
    let direct: RunningNginx;
    let balanced: RunningNginx;

    beforeAll(async () => {
      t = await startTestApp('sqlite', { TRUST_PROXY: '1', THROTTLE_AUTH_LIMIT: String(BUDGET) });
      const upstream = Number(new URL(t.url).port);
      direct = await startNginx(upstream);
      balanced = await startNginx(upstream, { balancer: '127.0.0.1' });
    });
    afterAll(async () => {
      await direct?.stop();
      await balanced?.stop();
      await t?.close();
    });

    const login = (proxy: RunningNginx, client: string) =>
      request(proxy.url)
        .post('/api/auth/login')
        .set('X-Forwarded-For', client)
        .send({ username: 'nobody', password: 'whatever1' });

    it('gives each client behind the balancer its own budget', async () => {
      for (let i = 0; i < BUDGET; i += 1)
        expect((await login(balanced, '203.0.113.1')).status).toBe(401);
      expect((await login(balanced, '203.0.113.1')).status).toBe(429);
      expect((await login(balanced, '203.0.113.2')).status).toBe(401);
    });

    it('ignores what a client says it is, without them', async () => {
      for (let i = 0; i < BUDGET; i += 1)
        expect((await login(direct, `198.51.100.${i}`)).status).toBe(401);
      expect((await login(direct, '198.51.100.99')).status).toBe(429);
    });
  });
});
