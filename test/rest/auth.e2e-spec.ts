import bcrypt from 'bcryptjs';
import request from 'supertest';
import { PasswordHasher, prehash } from '@app/auth/password-hasher';
import { AppException } from '@app/common/errors/app.exception';
import { UsersService } from '@app/users/users.service';
import { databaseKinds } from '../support/databases';
import { eventually } from '../support/sockets';
import {
  badTokensFor,
  forgeToken,
  nowSeconds,
  registerUser,
  TEST_PASSWORD,
  uniqueUsername,
} from '../support/api';
import { startTestApp, type TestApp } from '../support/test-app';

describe.each(databaseKinds())('auth REST (%s)', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(() => t.close());

  describe('POST /api/auth/register', () => {
    it('creates the user and never returns the password', async () => {
      const username = uniqueUsername('ada');
      const response = await request(t.url)
        .post('/api/auth/register')
        .send({ username, password: 'password-123' })
        .expect(201);
      expect(response.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        username,
        createdAt: expect.any(String),
      });
      expect(new Date(response.body.createdAt).toISOString()).toBe(response.body.createdAt);
    });

    it('answers 409 for a taken username, regardless of case', async () => {
      const username = uniqueUsername('Bob');
      await request(t.url)
        .post('/api/auth/register')
        .send({ username, password: 'password-123' })
        .expect(201);
      const response = await request(t.url)
        .post('/api/auth/register')
        .send({ username: username.toLowerCase(), password: 'password-123' })
        .expect(409);
      expect(response.body).toEqual({ code: 'CONFLICT', message: expect.any(String), details: [] });
    });

    it('registers one of two case variants sent at the same moment, and answers the other 409', async () => {
      const username = uniqueUsername('Twin');
      const answers = await Promise.all(
        [username.toUpperCase(), username.toLowerCase()].map((variant) =>
          request(t.url)
            .post('/api/auth/register')
            .send({ username: variant, password: TEST_PASSWORD }),
        ),
      );
      expect(answers.map((answer) => answer.status).sort()).toEqual([201, 409]);
      const conflict = answers.find((answer) => answer.status === 409)!;
      expect(conflict.body).toEqual({ code: 'CONFLICT', message: expect.any(String), details: [] });
    });

    it('keeps a deleted account’s username taken, in any case', async () => {
      const user = await registerUser(t.url);
      await request(t.url)
        .delete('/api/auth/me')
        .set('Authorization', `Bearer ${user.token}`)
        .expect(204);
      const again = await request(t.url)
        .post('/api/auth/register')
        .send({ username: user.username.toUpperCase(), password: TEST_PASSWORD })
        .expect(409);
      expect(again.body.code).toBe('CONFLICT');
    });

    it.each([
      ['a missing username', { password: 'password-123' }, 'username'],
      ['a too short username', { username: 'ab', password: 'password-123' }, 'username'],
      ['a too long username', { username: 'a'.repeat(33), password: 'password-123' }, 'username'],
      [
        'a username with other characters',
        { username: 'ada lovelace', password: 'password-123' },
        'username',
      ],
      ['a number for a username', { username: 12345, password: 'password-123' }, 'username'],
      ['a too short password', { username: 'someone', password: 'short' }, 'password'],
      ['a too long password', { username: 'someone', password: 'p'.repeat(129) }, 'password'],
      ['a number for a password', { username: 'someone', password: 12345678 }, 'password'],
      [
        'a lone surrogate in the password',
        { username: 'someone', password: 'correct horse\ud800' },
        'password',
      ],
      ['an unknown field', { username: 'someone', password: 'password-123', admin: true }, 'admin'],
    ])('refuses %s with VALIDATION_FAILED', async (_case, body, field) => {
      const response = await request(t.url).post('/api/auth/register').send(body).expect(400);
      expect(response.body.code).toBe('VALIDATION_FAILED');
      expect(typeof response.body.message).toBe('string');
      expect(response.body.details).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ field, constraints: expect.any(Array) }),
        ]),
      );
    });

    it('accepts the edge lengths', async () => {
      const username = `${uniqueUsername('e')}`.padEnd(32, 'x').slice(0, 32);
      await request(t.url)
        .post('/api/auth/register')
        .send({ username, password: 'p'.repeat(128) })
        .expect(201);
      await request(t.url)
        .post('/api/auth/register')
        .send({ username: `a.${Date.now() % 1000}`, password: '12345678' })
        .expect(201);
    });
  });

  describe('POST /api/auth/login', () => {
    it('issues an HS256 bearer token with the contract claims', async () => {
      const user = await registerUser(t.url);
      const response = await request(t.url)
        .post('/api/auth/login')
        .send({ username: user.username, password: 'password-123' })
        .expect(200);
      expect(response.body).toEqual({
        accessToken: expect.any(String),
        tokenType: 'Bearer',
        expiresIn: 3600,
      });
      const [header, payload] = (response.body.accessToken as string)
        .split('.')
        .slice(0, 2)
        .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
      expect(header.alg).toBe('HS256');
      expect(payload).toEqual({
        sub: user.id,
        username: user.username,
        iat: expect.any(Number),
        exp: expect.any(Number),
        // The login the session began with, which refreshed tokens keep: read just before
        // the token is signed, so in the second of its iat or the one before.
        auth_time: expect.any(Number),
      });
      expect(payload.iat - payload.auth_time).toBeGreaterThanOrEqual(0);
      expect(payload.iat - payload.auth_time).toBeLessThanOrEqual(1);
      expect(payload.exp - payload.iat).toBe(3600);
    });

    it('answers 401 to a login whose account was deleted while its password was checked', async () => {
      const user = await registerUser(t.url);
      const hasher = t.app.get(PasswordHasher);
      const verify = hasher.verify.bind(hasher);
      const deletedMeanwhile = jest
        .spyOn(hasher, 'verify')
        .mockImplementationOnce(async (password, hash) => {
          const valid = await verify(password, hash);
          await request(t.url)
            .delete('/api/auth/me')
            .set('Authorization', `Bearer ${user.token}`)
            .expect(204);
          return valid;
        });
      try {
        const refused = await request(t.url)
          .post('/api/auth/login')
          .send({ username: user.username, password: TEST_PASSWORD })
          .expect(401);
        expect(refused.body).toEqual({
          code: 'UNAUTHORIZED',
          message: 'Invalid username or password',
          details: [],
        });
      } finally {
        deletedMeanwhile.mockRestore();
      }
    });

    it('gives the same answer for a wrong password and an unknown user', async () => {
      const user = await registerUser(t.url);
      const wrongPassword = await request(t.url)
        .post('/api/auth/login')
        .send({ username: user.username, password: 'not-the-password' })
        .expect(401);
      const unknownUser = await request(t.url)
        .post('/api/auth/login')
        .send({ username: uniqueUsername('ghost'), password: 'not-the-password' })
        .expect(401);
      expect(wrongPassword.body).toEqual(unknownUser.body);
      expect(wrongPassword.body.code).toBe('UNAUTHORIZED');
    });

    it('hashes a password made at another cost again at its next login, at the cost asked now', async () => {
      const user = await registerUser(t.url);
      const users = t.app.get(UsersService);
      const atFive = await bcrypt.hash(prehash(TEST_PASSWORD), 5);
      await users.replacePasswordHash(user.id, atFive);
      const costOf = async () =>
        bcrypt.getRounds((await users.findActiveByUsernameWithHash(user.username))!.passwordHash);
      expect(await costOf()).toBe(5);

      await request(t.url)
        .post('/api/auth/login')
        .send({ username: user.username, password: TEST_PASSWORD })
        .expect(200);

      await eventually(async () => (await costOf()) === 4);
      await request(t.url)
        .post('/api/auth/login')
        .send({ username: user.username, password: TEST_PASSWORD })
        .expect(200);
    });

    it('lets a password with a NUL register, and takes any password at login, only as a wrong one', async () => {
      const username = uniqueUsername('nul');
      const password = 'pass\u0000word-123';
      await request(t.url).post('/api/auth/register').send({ username, password }).expect(201);
      await request(t.url).post('/api/auth/login').send({ username, password }).expect(200);
      await request(t.url)
        .post('/api/auth/login')
        .send({ username, password: 'pass\ud800word-123' })
        .expect(401);
    });

    it('folds only ASCII letters of a username: a Kelvin sign is no k', async () => {
      const user = await registerUser(t.url, uniqueUsername('k'));
      const login = (username: string) =>
        request(t.url).post('/api/auth/login').send({ username, password: 'password-123' });
      await login(user.username.toUpperCase()).expect(200);
      await login(`\u212a${user.username.slice(1)}`).expect(401);
    });

    it.each([
      ['no password', { username: 'x' }],
      ['a NUL character in the username', { username: 'ad\u0000a', password: 'password-123' }],
      ['a lone surrogate in the username', { username: 'ada\udfff', password: 'password-123' }],
    ])('refuses %s with VALIDATION_FAILED', async (_case, body) => {
      const response = await request(t.url).post('/api/auth/login').send(body).expect(400);
      expect(response.body).toEqual({
        code: 'VALIDATION_FAILED',
        message: expect.any(String),
        details: expect.any(Array),
      });
    });
  });

  describe('POST /api/auth/refresh', () => {
    const refresh = (token: string) =>
      request(t.url).post('/api/auth/refresh').set('Authorization', `Bearer ${token}`);
    const claimsOf = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as {
        sub: string;
        iat: number;
        exp: number;
        auth_time: number;
      };

    it('issues a new token of the same session for a token still valid', async () => {
      const user = await registerUser(t.url);
      const refreshed = await refresh(user.token).expect(200);
      expect(refreshed.body).toEqual({
        accessToken: expect.any(String),
        tokenType: 'Bearer',
        expiresIn: 3600,
      });
      const [before, after] = [claimsOf(user.token), claimsOf(refreshed.body.accessToken)];
      expect(after).toMatchObject({ sub: user.id, auth_time: before.auth_time });
      expect(after.exp).toBeGreaterThanOrEqual(before.exp);
      const me = await request(t.url)
        .get('/api/auth/me')
        .set('Authorization', `Bearer ${refreshed.body.accessToken}`)
        .expect(200);
      expect(me.body.id).toBe(user.id);
    });

    it('refuses bad tokens and those of a deleted account exactly like a missing one', async () => {
      const user = await registerUser(t.url);
      const missing = await request(t.url).post('/api/auth/refresh').expect(401);
      for (const [, token] of badTokensFor(user)) {
        expect((await refresh(token).expect(401)).body).toEqual(missing.body);
      }
      await request(t.url)
        .delete('/api/auth/me')
        .set('Authorization', `Bearer ${user.token}`)
        .expect(204);
      expect((await refresh(user.token).expect(401)).body).toEqual(missing.body);
    });

    it('ends a session older than JWT_SESSION_MAX_AGE, counted from the login (or the token without one)', async () => {
      const user = await registerUser(t.url);
      const thirtyOneDaysAgo = nowSeconds() - 31 * 24 * 3600;
      const claims = { sub: user.id, username: user.username, exp: nowSeconds() + 3600 };
      const oldSession = forgeToken({ ...claims, iat: nowSeconds(), auth_time: thirtyOneDaysAgo });
      const oldTokenWithoutSession = forgeToken({ ...claims, iat: thirtyOneDaysAgo });
      const minuteAgo = nowSeconds() - 60;
      const recentWithoutSession = forgeToken({ ...claims, iat: minuteAgo });

      for (const token of [oldSession, oldTokenWithoutSession]) {
        // The token itself is still good; its session may not be drawn out any longer.
        await request(t.url)
          .get('/api/auth/me')
          .set('Authorization', `Bearer ${token}`)
          .expect(200);
        expect((await refresh(token).expect(401)).body).toEqual({
          code: 'UNAUTHORIZED',
          message: 'Session expired: log in again',
          details: [],
        });
      }
      const renewed = await refresh(recentWithoutSession).expect(200);
      expect(claimsOf(renewed.body.accessToken).auth_time).toBe(minuteAgo);
    });

    it('never issues a token that outlives its session', async () => {
      const user = await registerUser(t.url);
      const sessionEnd = nowSeconds() + 600;
      // Ten minutes left of a 30-day session: the new token lives ten minutes, not an hour.
      const nearlyOver = forgeToken({
        sub: user.id,
        username: user.username,
        iat: nowSeconds(),
        exp: nowSeconds() + 3600,
        auth_time: sessionEnd - 30 * 24 * 3600,
      });
      const renewed = await refresh(nearlyOver).expect(200);
      const claims = claimsOf(renewed.body.accessToken);
      expect(Math.abs(claims.exp - sessionEnd)).toBeLessThanOrEqual(1);
      expect(Math.abs(renewed.body.expiresIn - 600)).toBeLessThanOrEqual(1);
    });
  });

  describe('GET /api/auth/me and token checks', () => {
    it('returns the caller', async () => {
      const user = await registerUser(t.url);
      const response = await request(t.url)
        .get('/api/auth/me')
        .set('Authorization', `Bearer ${user.token}`)
        .expect(200);
      expect(response.body).toEqual({
        id: user.id,
        username: user.username,
        createdAt: expect.any(String),
      });
    });

    it.each([
      ['signed with JWT_SECRET by anyone, not only by itself', (id: string) => id],
      ['whose user id is in upper case, on every database', (id: string) => id.toUpperCase()],
    ])('accepts an HS256 token %s', async (_case, subOf) => {
      const user = await registerUser(t.url);
      const token = forgeToken({
        sub: subOf(user.id),
        username: user.username,
        iat: nowSeconds(),
        exp: nowSeconds() + 3600,
      });
      const response = await request(t.url)
        .get('/api/auth/me')
        .set('Authorization', `Bearer ${token}`)
        .expect(200);
      expect(response.body.id).toBe(user.id);
    });

    it('refuses every bad token exactly like a missing one', async () => {
      const user = await registerUser(t.url);
      const missing = await request(t.url).get('/api/auth/me').expect(401);
      expect(missing.body).toEqual({
        code: 'UNAUTHORIZED',
        message: expect.any(String),
        details: [],
      });
      for (const [, token] of badTokensFor(user)) {
        const response = await request(t.url)
          .get('/api/auth/me')
          .set('Authorization', `Bearer ${token}`)
          .expect(401);
        expect(response.body).toEqual(missing.body);
      }
      await request(t.url)
        .get('/api/auth/me')
        .set('Authorization', `Basic ${user.token}`)
        .expect(401);
    });

    it('does not accept ?token= on ordinary REST routes', async () => {
      const user = await registerUser(t.url);
      await request(t.url).get(`/api/auth/me?token=${user.token}`).expect(401);
    });

    it('refuses the tokens of a deleted account', async () => {
      const user = await registerUser(t.url);
      await request(t.url)
        .delete('/api/auth/me')
        .set('Authorization', `Bearer ${user.token}`)
        .expect(204);
      const response = await request(t.url)
        .get('/api/auth/me')
        .set('Authorization', `Bearer ${user.token}`)
        .expect(401);
      const missing = await request(t.url).get('/api/auth/me').expect(401);
      expect(response.body).toEqual(missing.body);
      await request(t.url)
        .post('/api/auth/login')
        .send({ username: user.username, password: 'password-123' })
        .expect(401);
    });
  });
});

describe('sign-in attempts per account', () => {
  let t: TestApp;
  const login = (username: string, password = 'wrong-password') =>
    request(t.url).post('/api/auth/login').send({ username, password });

  beforeAll(async () => {
    t = await startTestApp('sqlite', { RATE_LIMIT_LOGIN_PER_ACCOUNT: '3/60s' });
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(() => t.close());

  it('refuses the account’s next attempt, the right password too, in any case, without hashing', async () => {
    const user = await registerUser(t.url);
    await login(user.username).expect(401);
    await login(user.username.toUpperCase()).expect(401);
    await login(user.username).expect(401);
    const verify = jest.spyOn(t.app.get(PasswordHasher), 'verify');

    const refused = await login(user.username, TEST_PASSWORD).expect(429);
    expect(refused.body).toEqual({
      code: 'RATE_LIMITED',
      message: expect.stringContaining('login'),
      details: [],
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(verify).not.toHaveBeenCalled();
  });

  it('gives a successful login’s attempt back: its owner signing in everywhere spends none', async () => {
    const user = await registerUser(t.url);
    for (let attempt = 0; attempt < 5; attempt += 1)
      await login(user.username, TEST_PASSWORD).expect(200);
    for (let attempt = 0; attempt < 3; attempt += 1) await login(user.username).expect(401);
    expect((await login(user.username, TEST_PASSWORD).expect(429)).body.code).toBe('RATE_LIMITED');
  });

  it('gives back an attempt that got no verdict: the password threads could not take it', async () => {
    const user = await registerUser(t.url);
    jest
      .spyOn(t.app.get(PasswordHasher), 'verify')
      .mockRejectedValue(AppException.unavailable('Too many sign-ins at once: retry shortly', 1));
    for (let attempt = 0; attempt < 5; attempt += 1)
      expect((await login(user.username).expect(503)).body.code).toBe('UNAVAILABLE');
    jest.restoreAllMocks();

    for (let attempt = 0; attempt < 3; attempt += 1) await login(user.username).expect(401);
    expect((await login(user.username, TEST_PASSWORD).expect(429)).body.code).toBe('RATE_LIMITED');
  });

  it('keeps counting an attempt that failed otherwise than UNAVAILABLE', async () => {
    const user = await registerUser(t.url);
    jest.spyOn(t.app.get(PasswordHasher), 'verify').mockRejectedValueOnce(new Error('a bug'));
    expect((await login(user.username).expect(500)).body.code).toBe('INTERNAL');
    jest.restoreAllMocks();

    for (let attempt = 0; attempt < 2; attempt += 1) await login(user.username).expect(401);
    expect((await login(user.username, TEST_PASSWORD).expect(429)).body.code).toBe('RATE_LIMITED');
  });

  it('counts an unknown name as a known one, so that the refusal tells nothing', async () => {
    const unknown = uniqueUsername();
    for (let attempt = 0; attempt < 3; attempt += 1) await login(unknown).expect(401);
    expect((await login(unknown).expect(429)).body.code).toBe('RATE_LIMITED');
  });

  it('keeps no budget for a name no account can have: refused as wrong, never as too many', async () => {
    for (const impossible of ['no such name', 'x'.repeat(33), 'ab', 'café'])
      for (let attempt = 0; attempt < 4; attempt += 1) await login(impossible).expect(401);
  });

  it('leaves other accounts, and the tokens the account holds, as they were', async () => {
    const [spent, other] = [await registerUser(t.url), await registerUser(t.url)];
    for (let attempt = 0; attempt < 3; attempt += 1) await login(spent.username).expect(401);
    await login(spent.username, TEST_PASSWORD).expect(429);

    await login(other.username, TEST_PASSWORD).expect(200);
    await request(t.url)
      .post('/api/auth/refresh')
      .set('Authorization', `Bearer ${spent.token}`)
      .expect(200);
  });
});
