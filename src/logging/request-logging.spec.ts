import { createServer, request, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { LoggingModule, REQUEST_LOGGING, rootLogger } from './logging.module';
import { redactUrl } from './redact-url';

type Middleware = (...args: Parameters<RequestListener>) => void;

/** The request logger of the module, writing into `written`, in front of a server that answers 204. */
async function loggedServer(written: string[]): Promise<Server> {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk.toString());
      done();
    },
  });
  const root = rootLogger({ logLevel: 'info', serviceName: 'test' }, sink);
  const provider = LoggingModule.forRoot(root).providers?.find(
    (each) => typeof each === 'object' && 'provide' in each && each.provide === REQUEST_LOGGING,
  ) as { useValue: Middleware };
  const server = createServer((req, res) => {
    provider.useValue(req, res);
    res.statusCode = 204;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('request logging', () => {
  it('writes neither credentials from the query nor any header', async () => {
    const written: string[] = [];
    const server = await loggedServer(written);
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => {
      const sent = request(
        {
          port,
          host: '127.0.0.1',
          path: '/api/sse/rooms/r?since=4&token=secret-jwt&ACCESS_TOKEN=other-jwt&password=hunter22',
          headers: { Authorization: 'Bearer header-jwt', Cookie: 'session=cookie-secret' },
        },
        (response) => response.resume().on('end', resolve),
      );
      sent.on('error', reject).end();
    });
    server.close();

    const line = written.join('');
    for (const secret of ['secret-jwt', 'other-jwt', 'hunter22', 'header-jwt', 'cookie-secret'])
      expect(line).not.toContain(secret);
    expect(JSON.parse(line)).toMatchObject({
      req: {
        method: 'GET',
        url: '/api/sse/rooms/r?since=4&token=%5Bredacted%5D&ACCESS_TOKEN=%5Bredacted%5D&password=%5Bredacted%5D',
      },
      res: { statusCode: 204 },
    });
  });

  it('leaves a URL without secrets as it is', () => {
    expect(redactUrl('/api/rooms/r/messages?since=4&limit=50')).toBe(
      '/api/rooms/r/messages?since=4&limit=50',
    );
    expect(redactUrl('/api/rooms')).toBe('/api/rooms');
    expect(redactUrl(undefined)).toBe('');
  });
});
