/**
 * The container's health check: exits 0 when `/health/live` answers 200 on
 * the address and port the service listens on (HOST, PORT), 1 otherwise.
 * Plain Node, no framework: it runs every 15 s beside the service.
 */
import { get } from 'node:http';

const TIMEOUT_MS = 4_000;

/** Where to reach a server listening on `host`: a wildcard address is reached on loopback. */
export function probeHost(host: string | undefined): string {
  if (!host || host === '0.0.0.0') return '127.0.0.1';
  return host === '::' ? '::1' : host;
}

export function probeLiveness(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = get({ host, port, path: '/health/live', timeout: TIMEOUT_MS }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('timeout', () => {
      request.destroy();
      resolve(false);
    });
    request.on('error', () => resolve(false));
  });
}

if (require.main === module) {
  const port = Number(process.env.PORT || 3000);
  void probeLiveness(probeHost(process.env.HOST), port).then((live) => process.exit(live ? 0 : 1));
}
