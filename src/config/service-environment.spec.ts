import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceEnvironment } from './service-environment';

describe('serviceEnvironment', () => {
  let dir: string;
  const saved = { ...process.env };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rt-env-'));
  });
  afterEach(() => {
    process.env = { ...saved };
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a .env file of the working directory', () => {
    writeFileSync(join(dir, '.env'), 'BODY_LIMIT_BYTES=2048\nREDIS_KEY_PREFIX="from-file:"\n');
    delete process.env.BODY_LIMIT_BYTES;
    delete process.env.REDIS_KEY_PREFIX;
    expect(serviceEnvironment(dir)).toMatchObject({
      BODY_LIMIT_BYTES: '2048',
      REDIS_KEY_PREFIX: 'from-file:',
    });
  });

  it('lets the process environment win over the file', () => {
    writeFileSync(join(dir, '.env'), 'BODY_LIMIT_BYTES=2048\n');
    process.env.BODY_LIMIT_BYTES = '4096';
    expect(serviceEnvironment(dir).BODY_LIMIT_BYTES).toBe('4096');
  });

  it('is the process environment alone without a file', () => {
    process.env.REDIS_KEY_PREFIX = 'only-env:';
    expect(serviceEnvironment(dir).REDIS_KEY_PREFIX).toBe('only-env:');
  });
});
