import type { AddressInfo } from 'node:net';
import express from 'express';
import { SseStream } from './sse-stream';

const limit = { bytes: 1024 * 1024, onOverflow: () => undefined };

/** A real HTTP server whose only route opens a stream, sends one event and ends it. */
async function serveOneStream(before: (response: express.Response) => void = () => undefined) {
  const app = express();
  app.get('/events', (_request, response) => {
    before(response);
    const stream = new SseStream(response, limit);
    stream.open(60_000);
    stream.send('connected', { userId: 'ada' });
    stream.end();
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  return { url, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('SseStream', () => {
  it('opens a text/event-stream that no cache or proxy buffers', async () => {
    const server = await serveOneStream();
    try {
      const response = await fetch(server.url);
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(response.headers.get('cache-control')).toBe('no-cache, no-transform');
      expect(response.headers.get('x-accel-buffering')).toBe('no');
      // The retry: puts back EventSource's own wait, after a refusal told it a longer one.
      expect(await response.text()).toBe(
        'retry: 3000\n\nevent: connected\ndata: {"userId":"ada"}\n\n',
      );
    } finally {
      await server.close();
    }
  });

  it('leaves a connection the server will not keep alive (a draining node) to close', async () => {
    const server = await serveOneStream((response) => (response.shouldKeepAlive = false));
    try {
      const response = await fetch(server.url);
      expect(response.headers.get('connection')).toBe('close');
      await response.text();
    } finally {
      await server.close();
    }
  });
});
