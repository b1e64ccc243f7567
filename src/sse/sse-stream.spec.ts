import type { AddressInfo } from 'node:net';
import express from 'express';
import type { ErrorBody } from '@app/common/errors/error-body';
import { ErrorCode } from '@app/common/errors/error-code';
import { SseStream } from './sse-stream';

const limit = { bytes: 1024 * 1024, onOverflow: () => undefined };

const expired: ErrorBody = { code: ErrorCode.Unauthorized, message: 'Token expired', details: [] };

/** A real HTTP server whose only route opens a stream, sends one event and ends it. */
async function serveOneStream(
  before: (response: express.Response) => void = () => undefined,
  end: (stream: SseStream) => void = (stream) => stream.end(),
) {
  const app = express();
  app.get('/events', (_request, response) => {
    before(response);
    const stream = new SseStream(response, limit);
    stream.open(60_000);
    stream.send('connected', { userId: 'ada' });
    end(stream);
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

  it('tells the client why the server ends the stream, once, as its last event', async () => {
    const ends: number[] = [];
    const server = await serveOneStream(undefined, (stream) => {
      stream.onEnd(() => ends.push(1));
      stream.end(expired);
      stream.end({ ...expired, message: 'again' });
    });
    try {
      expect(await (await fetch(server.url)).text()).toBe(
        'retry: 3000\n\nevent: connected\ndata: {"userId":"ada"}\n\n' +
          `event: closed\ndata: ${JSON.stringify(expired)}\n\n`,
      );
      expect(ends).toEqual([1]);
    } finally {
      await server.close();
    }
  });

  it('says nothing on a response it never opened as a stream', () => {
    const response = new FakeResponse();
    const stream = new SseStream(response as never, limit);
    stream.end(expired);
    expect(response.written).toEqual([]);
    expect(stream.closed).toBe(true);
  });

  it('drops a client that left too much unread instead of telling it, and ends once', () => {
    const response = new FakeResponse();
    const overflows: number[] = [];
    const ends: number[] = [];
    const stream = new SseStream(response as never, {
      bytes: 10,
      onOverflow: () => overflows.push(1),
    });
    stream.open(60_000);
    stream.onEnd(() => ends.push(1));
    response.writableLength = 11;

    stream.end(expired);

    expect(response.destroyed).toBe(true);
    expect(response.written.some((chunk) => chunk.includes('closed'))).toBe(false);
    expect(overflows).toEqual([1]);
    expect(ends).toEqual([1]);
  });
});

/** Just enough of an Express response for a stream that is never read. */
class FakeResponse {
  written: string[] = [];
  writableLength = 0;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  req = { method: 'GET' };
  once(): void {}
  status(): void {}
  set(): void {}
  flushHeaders(): void {}
  write(chunk: string): void {
    this.written.push(chunk);
  }
  end(): void {
    this.writableEnded = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}
