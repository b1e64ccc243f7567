import type { Response } from 'express';

/** One open `text/event-stream` response: events, heartbeats and back-pressure. */
export class SseStream {
  private heartbeat?: NodeJS.Timeout;
  private ended = false;

  constructor(private readonly response: Response) {}

  open(heartbeatMs: number): void {
    this.response.status(200);
    this.response.set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    this.response.flushHeaders();
    this.heartbeat = setInterval(() => this.write(':heartbeat\n\n'), heartbeatMs);
    this.heartbeat.unref();
  }

  get closed(): boolean {
    return this.ended || this.response.writableEnded || this.response.destroyed;
  }

  /** Writes one event; resolves when the client can take more, so that replays cannot flood memory. */
  send(event: string, data: unknown, id?: number): Promise<void> {
    const idLine = id === undefined ? '' : `id: ${id}\n`;
    return this.write(`${idLine}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    if (!this.response.writableEnded) this.response.end();
  }

  private write(chunk: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.response.write(chunk)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.response.off('drain', done);
        this.response.off('close', done);
        resolve();
      };
      this.response.once('drain', done);
      this.response.once('close', done);
    });
  }
}
