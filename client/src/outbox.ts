import { Backoff, type BackoffOptions } from './backoff';
import type { AckResponse, MessageJson, SendPayload } from './contract';
import { ChatError, clientError, endsRetries, type ServerFailures } from './errors';
import { newClientMsgId } from './ids';

/** What the outbox needs from a connection. */
export interface OutboxTransport {
  /** Whether a send can go out now. */
  readonly ready: boolean;
  /** Resolves with the server's ack; rejects when none came (timeout, lost connection). */
  send(payload: SendPayload): Promise<AckResponse<MessageJson>>;
}

export interface PendingMessage {
  readonly clientMsgId: string;
  readonly roomId: string;
  readonly text: string;
  /** Sends so far, answered or not. */
  readonly attempts: number;
}

interface Entry extends PendingMessage, ServerFailures {
  attempts: number;
  resolve(message: MessageJson): void;
  reject(error: ChatError): void;
}

interface RoomQueue {
  entries: Entry[];
  inFlight: boolean;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  backoff: Backoff;
}

export const OUTBOX_RETRY: Partial<BackoffOptions> = { baseMs: 500, capMs: 10_000 };

export { MAX_INTERNAL_ERRORS } from './errors';

/**
 * Messages on their way to the server. Each keeps its `clientMsgId` across
 * every resend, so that the server's idempotency makes delivery exactly-once
 * even when a connection drops between a send and its ack. Messages of a room
 * go out one at a time, in the order they were written. Only an error that no
 * retry can cure (validation, access) rejects, or INTERNAL answered
 * `MAX_INTERNAL_ERRORS` times; everything else is retried.
 */
export class Outbox {
  private readonly rooms = new Map<string, RoomQueue>();

  constructor(
    private readonly transport: OutboxTransport,
    private readonly retry: Partial<BackoffOptions> = OUTBOX_RETRY,
  ) {}

  /** An empty `clientMsgId` is none (the server takes it so): a new one is made. */
  send(roomId: string, text: string, clientMsgId?: string): Promise<MessageJson> {
    const id = clientMsgId || newClientMsgId();
    return new Promise((resolve, reject) => {
      const queue = this.queueOf(roomId);
      queue.entries.push({
        clientMsgId: id,
        roomId,
        text,
        attempts: 0,
        internalErrors: 0,
        resolve,
        reject,
      });
      this.pump(queue);
    });
  }

  /** The transport is ready again: resend everything not yet acknowledged. */
  flush(): void {
    for (const queue of this.rooms.values()) {
      clearTimeout(queue.retryTimer);
      queue.retryTimer = undefined;
      this.pump(queue);
    }
  }

  get pending(): PendingMessage[] {
    return [...this.rooms.values()].flatMap((queue) =>
      queue.entries.map(({ clientMsgId, roomId, text, attempts }) => ({
        clientMsgId,
        roomId,
        text,
        attempts,
      })),
    );
  }

  /**
   * Rejects every message still waiting; the outbox stays usable. A send in
   * flight that is answered later, or times out, brings none of them out.
   */
  discard(reason: string): void {
    for (const queue of this.rooms.values()) {
      clearTimeout(queue.retryTimer);
      queue.retryTimer = undefined;
      for (const entry of queue.entries.splice(0)) {
        entry.reject(new ChatError(clientError('UNAVAILABLE', reason)));
      }
    }
    this.rooms.clear();
  }

  private queueOf(roomId: string): RoomQueue {
    let queue = this.rooms.get(roomId);
    if (!queue) {
      queue = {
        entries: [],
        inFlight: false,
        retryTimer: undefined,
        backoff: new Backoff(this.retry),
      };
      this.rooms.set(roomId, queue);
    }
    return queue;
  }

  private pump(queue: RoomQueue): void {
    const head = queue.entries[0];
    if (!head || queue.inFlight || queue.retryTimer !== undefined || !this.transport.ready) return;
    queue.inFlight = true;
    head.attempts += 1;
    this.transport
      .send({ roomId: head.roomId, text: head.text, clientMsgId: head.clientMsgId })
      .then(
        (response) => this.answered(queue, head, response),
        () => this.unanswered(queue),
      );
  }

  private answered(queue: RoomQueue, entry: Entry, response: AckResponse<MessageJson>): void {
    queue.inFlight = false;
    if (response.ok) {
      this.settle(queue, entry, () => entry.resolve(response.data));
    } else if (endsRetries(response.error, entry)) {
      this.settle(queue, entry, () => entry.reject(new ChatError(response.error)));
    } else {
      this.retryLater(queue);
    }
  }

  /** No ack: the message may or may not be stored; resending the same id settles it. */
  private unanswered(queue: RoomQueue): void {
    queue.inFlight = false;
    // Without a connection, `flush` resends on reconnect; with one, the ack timed out.
    if (this.transport.ready) this.retryLater(queue);
  }

  private settle(queue: RoomQueue, entry: Entry, outcome: () => void): void {
    // Discarded while in flight: already rejected, and nothing behind it is left.
    if (queue.entries[0] !== entry) return;
    queue.entries.shift();
    queue.backoff.reset();
    if (queue.entries.length === 0 && this.rooms.get(entry.roomId) === queue) {
      this.rooms.delete(entry.roomId);
    }
    outcome();
    this.pump(queue);
  }

  private retryLater(queue: RoomQueue): void {
    const delay = queue.backoff.next() ?? this.retry.capMs ?? 10_000;
    queue.retryTimer = setTimeout(() => {
      queue.retryTimer = undefined;
      this.pump(queue);
    }, delay);
  }
}
