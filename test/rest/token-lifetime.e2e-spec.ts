import request from 'supertest';
import { nowSeconds, uniqueUsername } from '../support/api';
import { startTestApp, type TestApp } from '../support/test-app';

const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as {
    sub: string;
    iat: number;
    exp: number;
  };

describe.each([
  ['2m', 120],
  ['90', 90],
  ['15m', 900],
])('JWT_EXPIRES_IN=%s', (setting, seconds) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('sqlite', { JWT_EXPIRES_IN: setting });
  });
  afterAll(() => t.close());

  it(`issues tokens that live ${seconds} s, and says so in expiresIn`, async () => {
    const credentials = { username: uniqueUsername(), password: 'password-123' };
    const registered = await request(t.url)
      .post('/api/auth/register')
      .send(credentials)
      .expect(201);
    // Registering issues no token (the contract's 201 body is the user); logging in does.
    expect(Object.keys(registered.body).sort()).toEqual(['createdAt', 'id', 'username']);

    const before = nowSeconds();
    const login = await request(t.url).post('/api/auth/login').send(credentials).expect(200);
    const after = nowSeconds();
    expect(login.body).toEqual({
      accessToken: expect.any(String),
      tokenType: 'Bearer',
      expiresIn: seconds,
    });
    const claims = claimsOf(login.body.accessToken);
    expect(claims.sub).toBe(registered.body.id);
    expect(claims.exp - claims.iat).toBe(seconds);
    expect(claims.iat).toBeGreaterThanOrEqual(before - 1);
    expect(claims.iat).toBeLessThanOrEqual(after + 1);

    // The token is good at once on the routes that check it.
    const me = await request(t.url)
      .get('/api/auth/me')
      .set('Authorization', `Bearer ${login.body.accessToken}`)
      .expect(200);
    expect(me.body.id).toBe(registered.body.id);
  });
});
