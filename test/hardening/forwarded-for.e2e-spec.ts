import request from 'supertest';
import { WsCloseCode } from '@app/contract/ws-frames';
import { registerUser, type TestUser } from '../support/api';
import { RawClient } from '../support/raw-ws';
import { connectSocket, type ClientSocket } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

type ConnectError = Error & { data?: { code: string } };

const BUDGET = 3;

/**
 * What a client behind one appending proxy (nginx with
 * $proxy_add_x_forwarded_for) sends: its own made-up hops, then the address
 * the proxy saw. Only that last one may count.
 */
const spoofedHops = (clientAddress: string) => (attempt: number) =>
  `10.9.9.${attempt}, 172.16.${attempt}.1, ${clientAddress}`;

/** How an upgrade to /ws ends: closed at once (refused), or a first frame (accepted). */
const upgradeOutcome = (client: RawClient) =>
  Promise.race([
    client.closed,
    new Promise((resolve) => client.socket.once('message', () => resolve('accepted'))),
  ]);

describe('TRUST_PROXY=1 behind one proxy: a made-up X-Forwarded-For buys no budget', () => {
  let t: TestApp;
  let user: TestUser;
  const open: Array<RawClient | ClientSocket> = [];

  beforeAll(async () => {
    t = await startTestApp('sqlite', {
      TRUST_PROXY: '1',
      THROTTLE_AUTH_LIMIT: String(BUDGET),
      RATE_LIMIT_CONNECTIONS_PER_IP: `${BUDGET}/60s`,
    });
    user = await registerUser(t.url);
  });
  afterEach(() => open.splice(0).forEach((client) => client.close()));
  afterAll(() => t.close());

  it.each([
    ['/api/auth/login', { username: 'nobody', password: 'whatever1' }, 401, '198.51.100.1'],
    ['/api/auth/register', { username: 'x' }, 400, '198.51.100.2'],
  ])('limits %s by the address the proxy saw', async (path, body, status, client) => {
    const forwardedFor = spoofedHops(client);
    const attempt = (i: number) =>
      request(t.url).post(path).set('X-Forwarded-For', forwardedFor(i)).send(body);
    for (let i = 0; i < BUDGET; i += 1) expect((await attempt(i)).status).toBe(status);
    expect((await attempt(BUDGET)).status).toBe(429);
    // Another client behind the same proxy keeps its own budget.
    await request(t.url)
      .post(path)
      .set('X-Forwarded-For', '198.51.100.99')
      .send(body)
      .expect(status);
  });

  it('counts Socket.IO and /ws upgrades against that same address, in one budget', async () => {
    const forwardedFor = spoofedHops('198.51.100.3');
    const headers = (i: number) => ({ 'X-Forwarded-For': forwardedFor(i) });
    open.push(await connectSocket(t.url, user.token, { extraHeaders: headers(0) }));
    open.push(await RawClient.connect(t.url, user.token, { headers: headers(1) }));
    open.push(await connectSocket(t.url, user.token, { extraHeaders: headers(2) }));

    const raw = RawClient.open(t.url, user.token, { headers: headers(3) });
    open.push(raw);
    expect(await upgradeOutcome(raw)).toEqual({
      code: WsCloseCode.RateLimited,
      reason: 'Rate limited',
    });
    const refused = await connectSocket(t.url, user.token, { extraHeaders: headers(4) }).then(
      (socket) => {
        open.push(socket);
        throw new Error('connected over the budget');
      },
      (error: ConnectError) => error,
    );
    expect(refused.data?.code).toBe('RATE_LIMITED');
  });

  it('counts every address of one IPv6 /64 as one client on REST', async () => {
    const login = (forwardedFor: string) =>
      request(t.url)
        .post('/api/auth/login')
        .set('X-Forwarded-For', forwardedFor)
        .send({ username: 'nobody', password: 'whatever1' });
    for (let i = 0; i < BUDGET; i += 1)
      expect((await login(`2001:db8:5:6::${i + 1}`)).status).toBe(401);
    expect((await login('2001:db8:5:6:ffff::9')).status).toBe(429);
    expect((await login('2001:db8:5:7::1')).status).toBe(401);
  });

  it('counts every address of one IPv6 /64 as one client on upgrades, as REST does', async () => {
    const headers = (i: number) => ({ 'X-Forwarded-For': `2001:db8:1:2::${i + 1}` });
    open.push(await connectSocket(t.url, user.token, { extraHeaders: headers(0) }));
    open.push(await RawClient.connect(t.url, user.token, { headers: headers(1) }));
    open.push(await connectSocket(t.url, user.token, { extraHeaders: headers(2) }));

    const raw = RawClient.open(t.url, user.token, { headers: headers(3) });
    open.push(raw);
    expect(await upgradeOutcome(raw)).toMatchObject({ code: WsCloseCode.RateLimited });
    // Another /64 keeps its own budget.
    open.push(
      await RawClient.connect(t.url, user.token, {
        headers: { 'X-Forwarded-For': '2001:db8:1:3::1' },
      }),
    );
  });
});

describe('TRUST_PROXY left at false: X-Forwarded-For is not read at all', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', { THROTTLE_AUTH_LIMIT: String(BUDGET) });
  });
  afterAll(() => t.close());

  it('counts every request against the connection’s own address, whatever the header says', async () => {
    const attempt = (i: number) =>
      request(t.url)
        .post('/api/auth/login')
        .set('X-Forwarded-For', `203.0.113.${i + 1}`)
        .send({ username: 'nobody', password: 'whatever1' });
    for (let i = 0; i < BUDGET; i += 1) expect((await attempt(i)).status).toBe(401);
    const refused = await attempt(BUDGET);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('RATE_LIMITED');
  });
});
