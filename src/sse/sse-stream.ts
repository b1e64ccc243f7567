import type { Response } from 'express';
import { whenTokenExpires } from '@app/auth/token-expiry';

/**
 * One open `text/event-stream` response: events, heartbeats and back-pressure.
 * It ends once, whichever way: the client leaves, its token expires, or the
 * server ends it; then the `onEnd` listeners run.
 */
export class SseStream {
  private heartbeat?: NodeJS.Timeout;
  private expiry?: NodeJS.Timeout;
  private ended = false;
  private readonly endListeners: (() => void)[] = [];

  constructor(private readonly response: Response) {
    // Emitted when the client leaves, and after our own end().
    response.once('close', () => this.end());
  }

  /** Sends the headers; the stream ends with its token, and EventSource reconnects to authenticate again. */
  open(heartbeatMs: number, tokenExpiresAt: number): void {
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
    this.expiry = whenTokenExpires(tokenExpiresAt, () => this.end());
  }

  /**
   * Also true when the client left before the stream was opened (during an
   * await before it): its 'close' has been emitted already and will not be again.
   */
  get closed(): boolean {
    return this.ended || this.response.writableEnded || this.response.destroyed;
  }

  onEnd(listener: () => void): void {
    this.endListeners.push(listener);
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
    clearTimeout(this.expiry);
    if (!this.response.writableEnded) this.response.end();
    for (const listener of this.endListeners) listener();
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
