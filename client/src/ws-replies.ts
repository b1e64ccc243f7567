import {
  WsClientFrameType,
  WsServerFrameType,
  type WsClientFrame,
  type WsServerFrame,
} from './ws-frames';

/** A frame the server always answers: with its success frame, or with an error. */
type AnsweredFrame = Exclude<WsClientFrame, { type: typeof WsClientFrameType.Broadcast }>;

/** Broadcasts are answered only when refused, so a run of them is counted, not kept. */
type Awaiting = AnsweredFrame | { type: typeof WsClientFrameType.Broadcast; count: number };

type SuccessFrame = Extract<
  WsServerFrame,
  {
    type:
      | typeof WsServerFrameType.Joined
      | typeof WsServerFrameType.Left
      | typeof WsServerFrameType.Pong;
  }
>;

const ANSWERS: Record<SuccessFrame['type'], AnsweredFrame['type']> = {
  [WsServerFrameType.Joined]: WsClientFrameType.Join,
  [WsServerFrameType.Left]: WsClientFrameType.Leave,
  [WsServerFrameType.Pong]: WsClientFrameType.Ping,
};

/**
 * Pairs the server's answers on `/ws` with the frames they answer. The server
 * handles a connection's frames one at a time, in the order sent, so answers
 * come back in that order; an error frame names no request, so its place in
 * that order is what tells which request it refuses. Only a broadcast blurs
 * the order (success goes unanswered): a ping sent after broadcasts, a fence,
 * settles them before the next request whose refusal matters.
 */
export class WsReplies {
  private readonly awaiting: Awaiting[] = [];

  /** Whether unsettled broadcasts would make the refusal of a frame sent now ambiguous. */
  get needsFence(): boolean {
    return this.awaiting.some((entry) => entry.type === WsClientFrameType.Broadcast);
  }

  sent(frame: WsClientFrame): void {
    if (frame.type !== WsClientFrameType.Broadcast) {
      this.awaiting.push(frame);
      return;
    }
    const last = this.awaiting.at(-1);
    if (last?.type === WsClientFrameType.Broadcast) last.count += 1;
    else this.awaiting.push({ type: WsClientFrameType.Broadcast, count: 1 });
  }

  /** A success answer settles its request and everything sent before it. */
  answered(frame: SuccessFrame): void {
    const type = ANSWERS[frame.type];
    const room = 'room' in frame ? frame.room.toLowerCase() : undefined;
    const index = this.awaiting.findIndex(
      (entry) => entry.type === type && (!('room' in entry) || entry.room === room),
    );
    // No match: a frame the server sent on its own (a removal's `left`).
    if (index >= 0) this.awaiting.splice(0, index + 1);
  }

  /**
   * An error arrived: the join, leave or ping it refuses, or `undefined` when
   * it refuses a broadcast or answers nothing that was sent.
   */
  refused(): AnsweredFrame | undefined {
    const head = this.awaiting[0];
    if (head?.type !== WsClientFrameType.Broadcast) {
      this.awaiting.shift();
      return head;
    }
    head.count -= 1;
    if (head.count === 0) this.awaiting.shift();
    return undefined;
  }

  /** The connection is gone, and its answers with it. */
  clear(): void {
    this.awaiting.length = 0;
  }
}
