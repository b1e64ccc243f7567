import request from 'supertest';
import { registerUser, TEST_PASSWORD, uniqueUsername } from '../support/api';
import { requiredSeries } from '../support/metrics';
import { startTestApp, type TestApp } from '../support/test-app';

/** One thread, two waiting: the rest of a burst finds the queue full. */
const HASHING = {
  BCRYPT_ROUNDS: '10',
  PASSWORD_HASH_THREADS: '1',
  PASSWORD_HASH_QUEUE_LIMIT: '2',
};

const BURST = 12;

describe('a burst of sign-ins beyond what the hashing threads can queue', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', HASHING);
  });
  afterAll(() => t.close());

  it('refuses the excess with UNAVAILABLE and Retry-After, answers the rest, and signs in after', async () => {
    const user = await registerUser(t.url);
    const logins = Array.from({ length: BURST }, (_, i) =>
      request(t.url)
        .post('/api/auth/login')
        .send({ username: uniqueUsername(`ghost${i}`), password: 'not-the-password' }),
    );
    const answers = await Promise.all(logins);

    // One hashing and two waiting when the burst arrives; each answered one makes room again.
    const refused = answers.filter((answer) => answer.status === 503);
    const others = answers.filter((answer) => answer.status !== 503);
    expect(others.length).toBeGreaterThanOrEqual(3);
    expect(refused.length).toBeGreaterThan(0);
    for (const answer of refused) {
      expect(answer.body).toEqual({
        code: 'UNAVAILABLE',
        message: 'Too many sign-ins at once: retry shortly',
        details: [],
      });
      expect(answer.headers['retry-after']).toBe('1');
    }
    expect(others.map((answer) => answer.body.code)).toEqual(others.map(() => 'UNAUTHORIZED'));

    // What an operator sizing PASSWORD_HASH_THREADS reads: the refusals, and a pool idle again.
    const metrics = (await request(t.url).get('/metrics').expect(200)).text;
    expect(requiredSeries(metrics, 'auth_password_tasks_refused_total')).toBe(refused.length);
    expect(requiredSeries(metrics, 'auth_password_tasks_waiting')).toBe(0);
    expect(requiredSeries(metrics, 'auth_password_threads_busy')).toBe(0);

    await request(t.url)
      .post('/api/auth/login')
      .send({ username: user.username, password: TEST_PASSWORD })
      .expect(200);
    const registration = { username: uniqueUsername('late'), password: TEST_PASSWORD };
    await request(t.url).post('/api/auth/register').send(registration).expect(201);
  });
});
