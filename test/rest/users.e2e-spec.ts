import request from 'supertest';
import { RestClient } from '../../client/src';
import { createRoom, registerUser, TEST_PASSWORD, type TestUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { startTestApp, type TestApp } from '../support/test-app';

describe.each(databaseKinds())('users REST (%s)', (kind) => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const auth = (user: TestUser) => ({ Authorization: `Bearer ${user.token}` });
  const find = (username: string, user = ada) =>
    request(t.url).get('/api/users').query({ username }).set(auth(user));

  beforeAll(async () => {
    t = await startTestApp(kind);
    [ada, bob] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
  });
  afterAll(() => t.close());

  it('finds an account by its name, whatever the case it is asked in', async () => {
    for (const asked of [bob.username, bob.username.toUpperCase()]) {
      const response = await find(asked).expect(200);
      expect(response.body).toEqual({ id: bob.id, username: bob.username });
    }
  });

  it('lets an owner invite someone known only by name to a private room', async () => {
    const room = await createRoom(t.url, ada, { isPrivate: true });
    const { id } = (await find(bob.username).expect(200)).body as { id: string };
    await request(t.url).post(`/api/rooms/${room.id}/members`).set(auth(ada)).send({ userId: id });
    await request(t.url).get(`/api/rooms/${room.id}`).set(auth(bob)).expect(200);
    // The SDK asks the same.
    const rest = new RestClient({ baseUrl: t.url, token: () => ada.token });
    expect(await rest.findUser(bob.username)).toEqual({ id: bob.id, username: bob.username });
  });

  it('answers NOT_FOUND for a name no open account has', async () => {
    const leaving = await registerUser(t.url);
    await request(t.url).delete('/api/auth/me').set(auth(leaving)).expect(204);
    for (const username of ['nobody_at_all', leaving.username]) {
      const response = await find(username).expect(404);
      expect(response.body).toEqual({ code: 'NOT_FOUND', message: 'User not found', details: [] });
    }
  });

  it.each([
    ['no name', {}],
    ['a name too short', { username: 'ab' }],
    ['a name with a space', { username: 'ada lovelace' }],
    ['two names', { username: ['ada', 'bob'] }],
  ])('refuses %s with VALIDATION_FAILED', async (_case, query) => {
    const response = await request(t.url).get('/api/users').query(query).set(auth(ada)).expect(400);
    expect(response.body).toEqual({
      code: 'VALIDATION_FAILED',
      message: expect.any(String),
      details: expect.any(Array),
    });
  });

  it('answers only an authenticated caller', async () => {
    const response = await request(t.url).get('/api/users').query({ username: ada.username });
    expect(response.status).toBe(401);
    expect(response.body.code).toBe('UNAUTHORIZED');
  });
});

describe('users REST: a budget of name lookups per user', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', { RATE_LIMIT_USER_LOOKUP: '2/60s', THROTTLE_AUTH_LIMIT: '5' });
  });
  afterAll(() => t.close());

  const lookup = (user: TestUser) =>
    request(t.url)
      .get('/api/users')
      .query({ username: user.username })
      .set({ Authorization: `Bearer ${user.token}` });

  it('refuses a user’s lookups beyond it, leaving other users and the address’s sign-ins theirs', async () => {
    // Registering and logging in: two sign-ins each, four of the address's five.
    const [ada, bob] = [await registerUser(t.url), await registerUser(t.url)];
    await lookup(ada).expect(200);
    await lookup(ada).expect(200);
    const refused = await lookup(ada).expect(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);

    await lookup(bob).expect(200);
    await request(t.url)
      .post('/api/auth/login')
      .send({ username: ada.username, password: TEST_PASSWORD })
      .expect(200);
  });
});
