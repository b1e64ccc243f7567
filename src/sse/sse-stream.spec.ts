import { EventEmitter } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import express from 'express';
import type { ErrorBody } from '@app/common/errors/error-body';
import { ErrorCode } from '@app/common/errors/error-code';
import { SseStream } from './sse-stream';

const limit = { bytes: 1024 * 1024, stalledAfterMs: 60_000, onOverflow: () => undefined };

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
      stalledAfterMs: 60_000,
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

describe('SseStream and a client that stops reading', () => {
  const BEAT_MS = 50;
  const STALL_MS = 2 * BEAT_MS;
  const EVENT = { text: 'x'.repeat(60_000) };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A stream that sends `events` large events every `everyMs`, `bursts` times, with a limit far above them. */
  async function serveBursts({ events, everyMs, bursts }: Record<string, number>) {
    const dropped: number[] = [];
    const ended: number[] = [];
    let sent = 0;
    const app = express();
    app.get('/events', (_request, response) => {
      const stream = new SseStream(response, {
        bytes: 1024 * 1024 * 1024,
        stalledAfterMs: STALL_MS,
        onOverflow: () => dropped.push(1),
      });
      stream.onEnd(() => ended.push(1));
      stream.open(BEAT_MS);
      const burst = () => {
        for (let i = 0; i < events; i += 1) stream.send('chat:message', EVENT, ++sent);
      };
      burst();
      const timer = setInterval(() => {
        if (sent >= events * bursts || stream.closed) return clearInterval(timer);
        burst();
      }, everyMs);
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write('GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n');
    return {
      client,
      dropped,
      ended,
      close: async () => {
        client.destroy();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  it('drops a client whose backlog did not empty for two heartbeat intervals', async () => {
    const served = await serveBursts({ events: 200, everyMs: 1_000, bursts: 1 });
    try {
      served.client.pause();
      const closed = new Promise((resolve) => served.client.once('close', resolve));
      const deadline = Date.now() + 5_000;
      while (served.dropped.length === 0 && Date.now() < deadline) await sleep(BEAT_MS);
      expect(served.dropped).toEqual([1]);
      expect(served.ended).toEqual([1]);
      served.client.resume();
      await closed;
    } finally {
      await served.close();
    }
  });

  /** A stream on a fake response whose backlog the test sets, and what it dropped. */
  const fakeStream = () => {
    const response = new FakeResponse();
    const dropped: number[] = [];
    const stream = new SseStream(response as never, {
      bytes: 1024 * 1024,
      stalledAfterMs: STALL_MS,
      onOverflow: () => dropped.push(1),
    });
    stream.open(BEAT_MS);
    return { response, dropped, stream };
  };

  it('keeps a client whose large backlog drained between heartbeats, however often one finds one', () => {
    jest.useFakeTimers();
    try {
      const { response, dropped, stream } = fakeStream();
      response.writableLength = 100_000;
      for (let beat = 0; beat < 10; beat += 1) {
        jest.advanceTimersByTime(BEAT_MS / 2);
        response.emit('drain');
        jest.advanceTimersByTime(BEAT_MS / 2);
      }
      expect(dropped).toEqual([]);

      // Then it stops reading: gone once the backlog has stayed for the whole stall time.
      jest.advanceTimersByTime(STALL_MS - BEAT_MS);
      expect(stream.closed).toBe(false);
      jest.advanceTimersByTime(BEAT_MS);
      expect(dropped).toEqual([1]);
      expect(response.destroyed).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps a client whose small backlog emptied before each new event, with no drain to say so', () => {
    jest.useFakeTimers();
    try {
      const { response, dropped, stream } = fakeStream();
      for (let beat = 0; beat < 10; beat += 1) {
        jest.advanceTimersByTime(BEAT_MS / 2);
        response.writableLength = 0;
        stream.send('chat:message', { seq: beat });
        // Under the high-water mark: no drain comes when it goes.
        response.writableLength = 500;
        jest.advanceTimersByTime(BEAT_MS / 2);
      }
      expect(dropped).toEqual([]);
      expect(stream.closed).toBe(false);
    } finally {
      jest.useRealTimers();
    }
  });
});

/** Just enough of an Express response for a stream that is never read. */
class FakeResponse extends EventEmitter {
  written: string[] = [];
  writableLength = 0;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  req = { method: 'GET' };
  locals = {};
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
