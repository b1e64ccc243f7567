import type { Response } from 'express';
import type { ErrorBody } from '@app/common/errors/error-body';
import { SHUTDOWN_GRACES } from '@app/common/shutdown-graces';
import { SseEvent } from '@app/contract/events';
import { timeUntilNow } from '@app/metrics/http-metrics.middleware';

/** How long EventSource waits before it reconnects to an ended stream: its own default. */
const RECONNECT_MS = 3_000;

/** What a stream may hold for a client that does not read, and whom to tell when it ends for that. */
export interface SseBacklogLimit {
  bytes: number;
  /** How long a backlog may go without emptying: a client that took none of it for so long is gone. */
  stalledAfterMs: number;
  onOverflow(): void;
}

/**
 * One open `text/event-stream` response: events, heartbeats and back-pressure.
 * It ends once, whichever way: the client leaves, its token expires, the
 * client leaves more than the limit unread or stops reading (it resumes with
 * Last-Event-ID), or the server ends it; then the `onEnd` listeners run.
 */
export class SseStream {
  private heartbeat?: NodeJS.Timeout;
  private opened = false;
  private ended = false;
  private lastBeatAt = 0;
  /** Since when the backlog has not emptied, as far as the heartbeats know. */
  private behindSince?: number;
  private emptiedSinceBeat = false;
  private readonly endListeners: (() => void)[] = [];
  /** One wait for 'drain' shared by every caller, so that listeners do not pile up. */
  private drain?: Promise<void>;

  constructor(
    private readonly response: Response,
    private readonly limit: SseBacklogLimit,
  ) {
    // Emitted when the client leaves, and after our own end().
    response.once('close', () => this.end());
    // Only after a write found the backlog large; a small one `write` sees go.
    response.on('drain', () => (this.emptiedSinceBeat = true));
  }

  /** Sends the headers and starts the heartbeat. */
  open(heartbeatMs: number): void {
    this.response.status(200);
    this.response.set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    this.response.flushHeaders();
    timeUntilNow(this.response);
    this.opened = true;
    // EventSource keeps the last retry: it was told, a refusal's long wait included.
    this.write(`retry: ${RECONNECT_MS}\n\n`);
    this.lastBeatAt = performance.now();
    this.heartbeat = setInterval(() => this.beat(), heartbeatMs);
    this.heartbeat.unref();
  }

  /**
   * Also true when the client left before the stream was opened (during an
   * await before it): its 'close' has been emitted already and will not be again.
   */
  get closed(): boolean {
    return this.ended || this.response.writableEnded || this.response.destroyed;
  }

  /** A HEAD request: it gets the headers of a stream, and no stream. */
  get headOnly(): boolean {
    return this.response.req.method === 'HEAD';
  }

  onEnd(listener: () => void): void {
    this.endListeners.push(listener);
  }

  /** Bytes written and not yet taken by the client. */
  get backlog(): number {
    return this.response.writableLength;
  }

  /**
   * Writes one event at once, or ends the stream when the client already
   * leaves more than the limit unread. `waiting` counts bytes the caller holds
   * back for this stream, not yet written.
   */
  send(event: string, data: unknown, id?: number, waiting = 0): void {
    this.sendJson(event, JSON.stringify(data), id, waiting);
  }

  /** `send`, for data serialized already. */
  sendJson(event: string, json: string, id?: number, waiting = 0): void {
    const idLine = id === undefined ? '' : `id: ${id}\n`;
    this.write(`${idLine}event: ${event}\ndata: ${json}\n\n`, waiting);
  }

  /** Resolves once the client has taken what was written (at once when it has). */
  drained(): Promise<void> {
    if (this.closed || !this.response.writableNeedDrain) return Promise.resolve();
    this.drain ??= new Promise<void>((resolve) => {
      const done = () => {
        this.response.off('drain', done);
        this.response.off('close', done);
        this.drain = undefined;
        resolve();
      };
      this.response.on('drain', done);
      this.response.on('close', done);
    });
    return this.drain;
  }

  /**
   * Whether `waiting` more bytes would pass the limit; if so, the connection
   * is dropped: ending it politely would keep the unread bytes until TCP
   * gives up.
   */
  overflows(waiting: number): boolean {
    if (this.closed || this.backlog + waiting <= this.limit.bytes) return false;
    this.dropSlowConsumer();
    return true;
  }

  /**
   * With a `reason`, the client is told it first (`closed`, the error shape),
   * so that it can tell a token to renew, or a room it may no longer read,
   * from a connection lost.
   */
  end(reason?: ErrorBody): void {
    // Telling may end the stream itself: a client that stopped reading is dropped instead.
    if (reason && this.opened) this.send(SseEvent.Closed, reason);
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    if (!this.response.writableEnded) this.response.end();
    this.dropIfNeverRead();
    for (const listener of this.endListeners) listener();
  }

  /**
   * Ending waits for the client to take what is still unread; one that has
   * stopped reading would keep it, and the connection, until TCP gives up.
   */
  private dropIfNeverRead(): void {
    if (this.response.writableFinished || this.response.destroyed) return;
    const timer = setTimeout(() => this.response.destroy(), SHUTDOWN_GRACES.streamEndMs);
    timer.unref();
    this.response.once('close', () => clearTimeout(timer));
  }

  /**
   * A heartbeat only on an idle connection: data waiting to go out says
   * enough, and counts against the limit. A backlog that has not emptied for
   * `stalledAfterMs` is a client that stopped reading, or one so far behind
   * that it is better off resuming from storage: it is dropped, as one past
   * the limit is, rather than hold the backlog and what the stream was about
   * to send (a replay's page) until TCP gives up, which a peer that keeps its
   * window shut can put off for good. (Socket.IO and `/ws` drop such a peer
   * when it does not answer their pings.) A backlog seen at a heartbeat that
   * did not empty since the one before was there all along since then.
   */
  private beat(): void {
    const now = performance.now();
    if (this.backlog === 0 || this.emptiedSinceBeat) this.behindSince = undefined;
    else this.behindSince ??= this.lastBeatAt;
    this.emptiedSinceBeat = false;
    this.lastBeatAt = now;
    if (this.backlog === 0) this.write(':heartbeat\n\n');
    else if (this.behindSince !== undefined && now - this.behindSince >= this.limit.stalledAfterMs)
      this.dropSlowConsumer();
  }

  private dropSlowConsumer(): void {
    this.limit.onOverflow();
    this.response.destroy();
    this.end();
  }

  private write(chunk: string, waiting = 0): void {
    if (this.closed || this.overflows(waiting)) return;
    if (this.backlog === 0) this.emptiedSinceBeat = true;
    this.response.write(chunk);
  }
}
