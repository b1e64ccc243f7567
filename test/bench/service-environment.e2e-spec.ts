import { validateEnvironment } from '@app/config/env.validation';
import { newJwtSecret, serviceEnv } from '../../bench/lib/servers';

/** `npm run bench` is not part of `npm test`: a setting it gives the service must not stop start-up there. */
describe('the environment the bench starts the service with', () => {
  const base = serviceEnv(newJwtSecret());

  it.each([
    ['SQLite', {}],
    ['PostgreSQL', { DATABASE_URL: 'postgres://bench@127.0.0.1:5432/bench' }],
    [
      'PostgreSQL and Redis (two nodes)',
      {
        DATABASE_URL: 'postgres://bench@127.0.0.1:5432/bench',
        REDIS_URL: 'redis://127.0.0.1:6379',
        REDIS_KEY_PREFIX: 'bench:',
      },
    ],
  ])('is a valid configuration on %s', (_, storage) => {
    expect(() => validateEnvironment({ ...base, ...storage })).not.toThrow();
  });
});
