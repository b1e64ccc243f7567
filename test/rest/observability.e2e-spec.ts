import request from 'supertest';
import { createRoom, registerUser, type TestUser } from '../support/api';
import { metricValue } from '../support/metrics';
import { MessagesService } from '@app/messages/messages.service';
import { holdNextCall } from '../support/hold';
import { emitOk, eventually, sleep, socketPool } from '../support/sockets';
import { openSse } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

/** What every request leaves behind (metrics), and what error answers do not give away. */
describe('REST observability', () => {
  let t: TestApp;
  let ada: TestUser;
  const sockets = socketPool(() => t.url);

  beforeAll(async () => {
    t = await startTestApp('sqlite');
    ada = await registerUser(t.url);
  });
  afterEach(() => sockets.closeAll());
  afterAll(() => t.close());

  it('does not echo the request in the errors of malformed bodies and unknown routes', async () => {
    const malformed = await request(t.url)
      .post('/api/auth/login')
      .set('Content-Type', 'application/json')
      .send('SECRET-PASSWORD{')
      .expect(400);
    expect(malformed.body).toEqual({
      code: 'VALIDATION_FAILED',
      message: expect.any(String),
      details: [],
    });
    expect(JSON.stringify(malformed.body)).not.toContain('SECRET');

    const unknown = await request(t.url).get('/api/nowhere?token=SECRET-TOKEN').expect(404);
    expect(unknown.body).toEqual({ code: 'NOT_FOUND', message: expect.any(String), details: [] });
    expect(JSON.stringify(unknown.body)).not.toContain('SECRET');
  });

  it('times requests the body parser refuses', async () => {
    const series =
      'http_request_duration_seconds_count{method="POST",route="unmatched",status="400"}';
    const before = await metricValue(t.url, series);
    await request(t.url)
      .post('/api/auth/login')
      .set('Content-Type', 'application/json')
      .send('{"username":')
      .expect(400);
    expect(await metricValue(t.url, series)).toBe(before + 1);
  });

  it('times an event stream that the client closes until it opened, not for as long as it stayed open', async () => {
    const series = (part: string) =>
      `http_request_duration_seconds_${part}{method="GET",route="/api/events",status="200"}`;
    const [countBefore, sumBefore] = [
      await metricValue(t.url, series('count')),
      await metricValue(t.url, series('sum')),
    ];
    const stream = await openSse(`${t.url}/api/events?token=${ada.token}`);
    await stream.next((event) => event.event === 'connected');
    await sleep(1_500);
    stream.close();
    await eventually(async () => (await metricValue(t.url, series('count'))) === countBefore + 1);
    expect((await metricValue(t.url, series('sum'))) - sumBefore).toBeLessThan(1);
  });

  it('counts a browser EventSource refused as a stream as the refusal it is (429), not 200', async () => {
    const bob = await registerUser(t.url);
    const series = (status: number) =>
      `http_request_duration_seconds_count{method="GET",route="/api/events",status="${status}"}`;
    const [refusedBefore, servedBefore] = [
      await metricValue(t.url, series(429)),
      await metricValue(t.url, series(200)),
    ];
    const held = [];
    try {
      // Every one of the user's streams open (MAX_SSE_STREAMS_PER_USER, 10).
      for (let i = 0; i < 10; i += 1) {
        const stream = await openSse(`${t.url}/api/events?token=${bob.token}`);
        held.push(stream);
        await stream.next((event) => event.event === 'connected');
      }
      const refused = await openSse(`${t.url}/api/events?token=${bob.token}`, {
        Accept: 'text/event-stream',
      });
      expect(refused.status).toBe(200);
      await refused.closed;
      expect(refused.received.map(({ event }) => event)).toEqual(['refused']);

      await eventually(async () => (await metricValue(t.url, series(429))) === refusedBefore + 1);
      expect(await metricValue(t.url, series(200))).toBe(servedBefore);
    } finally {
      for (const stream of held) stream.close();
    }
  });

  it('counts a request its client left before the answer as 499, not as the status it was to get', async () => {
    const room = await createRoom(t.url, ada);
    const series = (status: number) =>
      `http_request_duration_seconds_count{method="POST",route="/api/rooms/:roomId/messages",status="${status}"}`;
    const [stored, left] = [
      await metricValue(t.url, series(201)),
      await metricValue(t.url, series(499)),
    ];
    const access = holdNextCall(t.app.get(MessagesService), 'send');
    const abort = new AbortController();
    const sending = fetch(`${t.url}/api/rooms/${room.id}/messages`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ada.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ text: 'left behind' }),
      signal: abort.signal,
    }).catch(() => 'aborted');
    await access.started;
    abort.abort();
    expect(await sending).toBe('aborted');

    await eventually(async () => (await metricValue(t.url, series(499))) === left + 1);
    access.release();
    await sleep(200);
    expect(await metricValue(t.url, series(201))).toBe(stored);
  });

  it('counts each stored message once, by the transport it came over', async () => {
    const room = await createRoom(t.url, ada);
    const rest = 'realtime_messages_total{transport="rest"}';
    const socketIo = 'realtime_messages_total{transport="socket.io"}';
    const [restBefore, socketIoBefore] = [
      await metricValue(t.url, rest),
      await metricValue(t.url, socketIo),
    ];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await request(t.url)
        .post(`/api/rooms/${room.id}/messages`)
        .set('Authorization', `Bearer ${ada.token}`)
        .send({ text: 'over REST', clientMsgId: 'rest-1' })
        .expect(201);
    }
    const socket = await sockets.connect(ada);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await emitOk(socket, 'chat:message', {
        roomId: room.id,
        text: 'over Socket.IO',
        clientMsgId: 'io-1',
      });
    }

    expect(await metricValue(t.url, rest)).toBe(restBefore + 1);
    expect(await metricValue(t.url, socketIo)).toBe(socketIoBefore + 1);
  });
});

describe('the API description', () => {
  it('is not served with API_DOCS=false, and answers 404 in the contract’s shape', async () => {
    const t = await startTestApp('sqlite', { API_DOCS: 'false' });
    try {
      for (const path of ['/api/docs', '/api/docs-json']) {
        const response = await request(t.url).get(path).expect(404);
        expect(response.body).toEqual({
          code: 'NOT_FOUND',
          message: expect.any(String),
          details: [],
        });
      }
      await request(t.url).get('/health/live').expect(200);
    } finally {
      await t.close();
    }
  });
});
