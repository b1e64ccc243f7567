import type { ConfigService } from '@nestjs/config';
import type { AllConfig } from '@app/config/app-config';
import { MetricsService } from '@app/metrics/metrics.service';
import { PasswordHasher } from './password-hasher';

const made: PasswordHasher[] = [];

/** The value of one unlabelled series in a `/metrics` text. */
function seriesValue(text: string, name: string): number {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

/** A hasher at `rounds`, with one hashing thread; closed after the suite. */
function hasherAt(rounds: number, metrics = new MetricsService()): PasswordHasher {
  const settings = { bcryptRounds: rounds, hashThreads: 1, hashQueueLimit: 100 };
  const config = {
    get: (key: string) => (key === 'auth' ? settings : settings.bcryptRounds),
  } as unknown as ConfigService<AllConfig, true>;
  const hasher = new PasswordHasher(config, metrics);
  made.push(hasher);
  return hasher;
}

describe('PasswordHasher', () => {
  const hasher = hasherAt(4);
  afterAll(() => Promise.all(made.map((each) => each.onApplicationShutdown())));

  it('verifies the right password and refuses others', async () => {
    const hash = await hasher.hash('correct horse battery');
    expect(hash).toMatch(/^\$2[aby]\$04\$/);
    await expect(hasher.verify('correct horse battery', hash)).resolves.toBe(true);
    await expect(hasher.verify('correct horse batterY', hash)).resolves.toBe(false);
  });

  it('counts every character of a long password, past bcrypt’s 72 bytes', async () => {
    const long = 'x'.repeat(100);
    const hash = await hasher.hash(long);
    await expect(hasher.verify(`${'x'.repeat(99)}y`, hash)).resolves.toBe(false);
  });

  it('spends a comparison and fails when there is no user', async () => {
    await expect(hasher.verifyAgainstNothing('anything')).resolves.toBe(false);
  });

  it('makes what an unknown name is compared against before the first login', async () => {
    const fresh = hasherAt(4);
    await fresh.onModuleInit();
    const hashing = jest.spyOn(fresh, 'hash');
    await expect(fresh.verifyAgainstNothing('anything')).resolves.toBe(false);
    expect(hashing).not.toHaveBeenCalled();
  });

  it('asks for a new hash of one made at another cost', async () => {
    const atFive = hasherAt(5);
    expect(hasher.needsRehash(await hasher.hash('pw-12345678'))).toBe(false);
    expect(hasher.needsRehash(await atFive.hash('pw-12345678'))).toBe(true);
  });

  it('spends a comparison at the current cost for a wrong password against a cheaper hash', async () => {
    const atEight = hasherAt(8);
    const cheap = await hasher.hash('the-password');
    const spent = jest.spyOn(atEight, 'verifyAgainstNothing');

    await expect(atEight.verify('not-the-password', cheap)).resolves.toBe(false);
    expect(spent).toHaveBeenCalledTimes(1);
    await expect(atEight.verify('the-password', cheap)).resolves.toBe(true);
    await expect(atEight.verify('wrong', await atEight.hash('right-one'))).resolves.toBe(false);
    expect(spent).toHaveBeenCalledTimes(1);
  });

  it('answers a wrong password as wrong when the padding comparison after it cannot run', async () => {
    const atEight = hasherAt(8);
    const cheap = await hasher.hash('the-password');
    jest.spyOn(atEight, 'verifyAgainstNothing').mockRejectedValueOnce(new Error('no thread free'));

    await expect(atEight.verify('not-the-password', cheap)).resolves.toBe(false);
  });

  it('shows its threads at work and the tasks waiting for them in the metrics', async () => {
    const metrics = new MetricsService();
    const slow = hasherAt(11, metrics);
    const gauges = async () => {
      const text = await metrics.render();
      return [
        seriesValue(text, 'auth_password_threads_busy'),
        seriesValue(text, 'auth_password_tasks_waiting'),
      ];
    };

    // Settled whatever the checks find: a hash left failing after the suite would end the run.
    const hashed = Promise.allSettled([slow.hash('first'), slow.hash('second')]);
    expect(await gauges()).toEqual([1, 1]);
    expect((await hashed).map((each) => each.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(await gauges()).toEqual([0, 0]);
  });
});
