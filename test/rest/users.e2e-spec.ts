import request from 'supertest';
import { RestClient } from '../../client/src';
import { createRoom, registerUser, type TestUser } from '../support/api';
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

describe('users REST: name lookups share the sign-ins’ budget', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', { THROTTLE_AUTH_LIMIT: '3' });
  });
  afterAll(() => t.close());

  it('refuses lookups beyond it with RATE_LIMITED', async () => {
    // Registering and logging in take two of the three.
    const user = await registerUser(t.url);
    const lookup = () =>
      request(t.url)
        .get('/api/users')
        .query({ username: user.username })
        .set({ Authorization: `Bearer ${user.token}` });
    await lookup().expect(200);
    const refused = await lookup().expect(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });
  });
});
