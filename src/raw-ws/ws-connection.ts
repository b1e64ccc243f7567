import { WebSocket } from 'ws';
import type { AuthUser } from '@app/auth/auth-user';
import type { Connection } from '@app/chat/chat.service';
import type { ErrorBody } from '@app/common/errors/error-body';
import { SerialQueue } from '@app/common/serial-queue';
import { WsServerFrameType as ServerFrameType, type WsErrorRequest } from '@app/contract/ws-frames';
import { WaitingWork } from '@app/realtime/waiting-work';

/** One options object for every send: a delivery goes to every member of its room. */
const AS_TEXT = { binary: false } as const;

/** One authenticated raw WebSocket client. */
export class WsConnection implements Connection {
  /** Cleared on each ping, set again by the pong: a peer that stays silent for a whole interval is dead. */
  alive = true;
  /** Channels this connection receives, to drop them all on close. */
  readonly channels = new Set<string>();
  /** Frames are handled one at a time, in the order the client sent them. */
  readonly frames = new SerialQueue();
  private closedByServer = false;
  /** A token renewal is under way outside the queue (`busy` when it came). */
  renewing = false;
  /** What the frames received and not yet handled hold. */
  private readonly waiting: WaitingWork<WsConnection>;

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    /** Replaced when the client presents a fresh token (same user, a later expiry). */
    public user: AuthUser,
    private readonly slowConsumerLimitBytes: number,
    /** Told when the connection is dropped as too slow, whatever was being sent. */
    private readonly droppedAsSlow: () => void = () => undefined,
  ) {
    this.waiting = new WaitingWork(slowConsumerLimitBytes);
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * The server ended the connection (rate limit, expired token, closed
   * account, slow or silent peer, shutdown): what its frames still waiting
   * asked for is not done. Frames of a client that closed by itself are.
   */
  get cutOff(): boolean {
    return this.closedByServer;
  }

  /** Frames are waiting or being handled: the next one would wait its turn. */
  get busy(): boolean {
    return this.waiting.has(this);
  }

  /**
   * Queues a received frame's handling behind the frames before it, unless
   * those waiting already hold the slow-consumer limit: while the database
   * stalls, the queue must not keep everything the client sends meanwhile.
   * A frame is always taken when none wait.
   * @returns false when the frame was not queued
   */
  queueFrame(bytes: number, handle: () => Promise<void>): boolean {
    const cost = this.waiting.admit(this, bytes);
    if (cost === undefined) return false;
    void this.frames.run(handle).finally(() => this.waiting.release(this, cost));
    return true;
  }

  /**
   * room → the lastSeq its `joined` frame counted, while this node's live
   * deliveries of the room are still behind it (messages stored elsewhere,
   * on their way here): those must not come again.
   */
  private counted?: Map<string, number>;

  /** Live messages of the room up to `seq` are not sent: the `joined` frame counted them. */
  skipUpTo(roomId: string, seq: number): void {
    (this.counted ??= new Map()).set(roomId, seq);
  }

  /** The last seq of the room it has been sent live (`delivered`), or counted as having by a `joined` frame. */
  liveSeq(roomId: string, delivered: number): number {
    return Math.max(delivered, this.counted?.get(roomId) ?? delivered);
  }

  /** Forgets what a `joined` frame of the room counted: the connection left it. */
  forgetCounted(roomId: string): void {
    this.counted?.delete(roomId);
  }

  /** Whether a live message of a joined room is still to be sent; one past the count ends the skipping. */
  wants(message: { roomId: string; seq: number }): boolean {
    const upTo = this.counted?.get(message.roomId);
    if (upTo === undefined) return true;
    if (message.seq <= upTo) return false;
    this.counted!.delete(message.roomId);
    return true;
  }

  send(frame: object): void {
    this.sendText(JSON.stringify(frame));
  }

  /**
   * A text frame; deliveries pass UTF-8 bytes encoded once for all their
   * recipients. A client that stopped reading is cut off once its backlog
   * passes the limit.
   * @returns false when the connection was dropped as too slow
   */
  sendText(text: string | Buffer): boolean {
    if (!this.open) return true;
    if (this.socket.bufferedAmount > this.slowConsumerLimitBytes) {
      this.terminate();
      this.droppedAsSlow();
      return false;
    }
    this.socket.send(text, AS_TEXT);
    return true;
  }

  /** `request` names the frame refused, when there is one. */
  sendError(error: ErrorBody, request: WsErrorRequest = {}): void {
    this.send({ type: ServerFrameType.Error, ...error, ...request });
  }

  terminate(): void {
    this.markCutOff();
    this.socket.terminate();
  }

  close(code: number, reason: string): void {
    if (!this.markCutOff()) return;
    this.socket.close(code, reason);
  }

  /** Only a connection neither side has started to close yet is the server's to cut off. */
  private markCutOff(): boolean {
    const live =
      this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING;
    if (live) this.closedByServer = true;
    return live;
  }
}
