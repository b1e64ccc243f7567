import { Logger } from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import { describeFailure, isUnavailableError, toErrorBody } from '@app/common/errors/to-error-body';
import { SerialQueue } from '@app/common/serial-queue';
import { ServerEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import type { HistoryPage, HistoryRequest } from '@app/messages/messages.service';
import type { SseStream } from './sse-stream';

const REPLAY_PAGE_SIZE = 200;
const logger = new Logger('RoomFeed');

export type PageReader = (request: HistoryRequest) => Promise<HistoryPage>;

/**
 * A room's messages on one stream, each exactly once and in seq order:
 * stored messages after `since` first, then live ones. A live message that
 * skips ahead (one committed meanwhile, or delivered out of order) first
 * brings in the missing ones from storage. Stored messages are read as the
 * client takes them; live ones are written at once, and those waiting behind
 * a read count against the stream's limit with what the client left unread.
 */
export class RoomFeed {
  private readonly queue = new SerialQueue();
  /** Bytes of live messages queued behind a replay or catch-up. */
  private waiting = 0;
  private replaying = false;
  /** Until the first replay has read storage to its end: live messages are read from there too. */
  private readingHistory = false;
  /** Storage's end as resyncs found it while the first replay ran: read up to it after. */
  private replayTarget = 0;

  constructor(
    private readonly stream: SseStream,
    private readonly readPage: PageReader,
    private lastSent: number,
  ) {}

  /**
   * Call once, after subscribing to live messages. Its last read of storage
   * may come before a message this node then missed: a resync meanwhile
   * (`readAgainUpTo`) makes it read once more when done.
   */
  replay(): Promise<void> {
    this.replaying = true;
    this.readingHistory = true;
    return this.queue
      .run(async () => {
        try {
          await this.catchUp(Number.MAX_SAFE_INTEGER);
          // Later live messages queue behind the rest of the replay, which then ends.
          this.readingHistory = false;
          // Until no resync came during the last read (nothing is awaited from the check on).
          for (let target = this.replayTarget; target > this.lastSent; target = this.replayTarget) {
            await this.catchUp(target);
            if (this.lastSent < target) break;
          }
        } finally {
          this.readingHistory = false;
          this.replaying = false;
        }
      })
      .catch(this.endUnread);
  }

  /**
   * Storage failed the stream: the client comes back with Last-Event-ID, to
   * this node or another, and takes what it lacks from there. Anything else
   * is a failure of ours, logged, and told as one.
   */
  private readonly endUnread = (error: unknown) => {
    if (!isUnavailableError(error)) {
      logger.error(`A room stream failed: ${describeFailure(error)}`);
      return this.stream.end(toErrorBody(error));
    }
    this.stream.end(
      AppException.unavailable("Could not read the room's messages: connect again").toBody(),
    );
  };

  /** The seq of the last message sent, or the start before any. */
  get position(): number {
    return this.lastSent;
  }

  /**
   * A resync found storage at `upTo`: a feed still in its first replay reads
   * up to there when done, rather than take part in the shared catch-up.
   * @returns false when the feed is not replaying (it takes `catchUpWith`)
   */
  readAgainUpTo(upTo: number): boolean {
    if (!this.replaying) return false;
    this.replayTarget = Math.max(this.replayTarget, upTo);
    return true;
  }

  /**
   * Stored messages read for every stream of the room, in seq order: those
   * it lacks go out in turn with the live ones, as the client takes them
   * (they are read already, so they do not count against its limit). Missing
   * the start of them, it reads that part itself first.
   */
  catchUpWith(stored: readonly MessageJson[]): void {
    const last = stored.at(-1);
    if (!last || last.seq <= this.lastSent) return;
    const catchUp = async () => {
      if (stored[0].seq > this.lastSent + 1) await this.catchUp(stored[0].seq - 1);
      for (const message of stored) {
        if (this.stream.closed) return;
        if (message.seq !== this.lastSent + 1) continue;
        await this.stream.drained();
        this.send(message);
      }
    };
    void this.queue.run(catchUp).catch(this.endUnread);
  }

  /**
   * `json` is the message serialized, once for all streams. While the first
   * replay reads the history, which it then reads on to this message, only
   * its seq is kept: held whole, the room's traffic would count against a
   * client still taking its history, and drop a fast one as slow.
   */
  live(message: MessageJson, json: string): void {
    if (this.readingHistory) {
      this.replayTarget = Math.max(this.replayTarget, message.seq);
      return;
    }
    const bytes = Buffer.byteLength(json);
    this.waiting += bytes;
    if (this.stream.overflows(this.waiting)) return;
    const deliver = () => {
      this.waiting -= bytes;
      return this.deliver(message, json);
    };
    void this.queue.run(deliver).catch(this.endUnread);
  }

  private async deliver(message: MessageJson, json: string): Promise<void> {
    if (message.seq <= this.lastSent || this.stream.closed) return;
    if (message.seq > this.lastSent + 1) await this.catchUp(message.seq - 1);
    if (message.seq !== this.lastSent + 1) return;
    this.lastSent = message.seq;
    this.stream.sendJson(ServerEvent.Message, json, message.seq, this.waiting);
  }

  private async catchUp(upTo: number): Promise<void> {
    while (!this.stream.closed && this.lastSent < upTo) {
      const page = await this.readPage({ since: this.lastSent, limit: REPLAY_PAGE_SIZE });
      for (const message of page.items) {
        if (message.seq > upTo) return;
        await this.stream.drained();
        this.send(message);
      }
      if (page.nextCursor === null) return;
    }
  }

  private send(message: MessageJson): void {
    this.lastSent = message.seq;
    this.stream.send(ServerEvent.Message, message, message.seq, this.waiting);
  }
}
