import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createApp } from '@app/app.factory';
import { probeHost } from '@app/health/liveness-probe';
import { freePort } from '../support/free-port';
import { REPO_ROOT } from '../support/service-process';
import { createTestDatabase } from '../support/databases';
import { BASE_TEST_ENV, startTestApp, type TestApp } from '../support/test-app';

/** The image's HEALTHCHECK runs this file of the build. */
const PROBE = join(REPO_ROOT, 'dist', 'src', 'health', 'liveness-probe.js');

describe('the container liveness probe', () => {
  let t: TestApp;

  beforeAll(async () => {
    if (!existsSync(PROBE)) throw new Error(`${PROBE} is missing: run "npm run build"`);
    t = await startTestApp('sqlite');
  });
  afterAll(() => t.close());

  /**
   * The probe's exit code, run as the image runs it, with the given
   * environment; not spawned synchronously, which would stop this process's
   * service from answering it.
   */
  const probe = (env: Record<string, string>) =>
    new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [PROBE], {
        env: { PATH: process.env.PATH, ...env },
        stdio: 'ignore',
        timeout: 10_000,
      });
      child.once('exit', (code) => resolve(code));
    });

  it('reaches the service on the address and port it listens on', async () => {
    const port = new URL(t.url).port;
    expect(await probe({ PORT: port })).toBe(0);
    expect(await probe({ PORT: port, HOST: '0.0.0.0' })).toBe(0);
    expect(await probe({ PORT: port, HOST: '127.0.0.1' })).toBe(0);
  });

  it('reaches a service listening on another address than loopback’s first', async () => {
    const database = await createTestDatabase('sqlite');
    const app = await createApp({ ...BASE_TEST_ENV, ...database.env });
    try {
      await app.listen(0, '127.0.0.2');
      const { port } = app.getHttpServer().address() as AddressInfo;
      expect(await probe({ PORT: String(port), HOST: '127.0.0.2' })).toBe(0);
    } finally {
      await app.close();
      await database.drop();
    }
  });

  it('fails where nothing listens', async () => {
    expect(await probe({ PORT: String(await freePort()) })).toBe(1);
    expect(await probe({ PORT: new URL(t.url).port, HOST: '127.0.0.2' })).toBe(1);
  });

  it('reaches a wildcard address on loopback, any other as it is', () => {
    expect(probeHost(undefined)).toBe('127.0.0.1');
    expect(probeHost('0.0.0.0')).toBe('127.0.0.1');
    expect(probeHost('::')).toBe('::1');
    expect(probeHost('10.1.2.3')).toBe('10.1.2.3');
    expect(probeHost('app.internal')).toBe('app.internal');
  });
});
