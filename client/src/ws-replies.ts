import {
  WsClientFrameType,
  WsServerFrameType,
  type WsClientFrame,
  type WsErrorRequest,
  type WsServerFrame,
} from './ws-frames';

/** A frame the server answers: with its success frame, or with an error naming it. */
type AnsweredFrame = Exclude<WsClientFrame, { type: typeof WsClientFrameType.Broadcast }>;

type SuccessFrame = Extract<
  WsServerFrame,
  {
    type:
      | typeof WsServerFrameType.Joined
      | typeof WsServerFrameType.Left
      | typeof WsServerFrameType.Pong
      | typeof WsServerFrameType.Authenticated;
  }
>;

const ANSWERS: Record<SuccessFrame['type'], AnsweredFrame['type']> = {
  [WsServerFrameType.Joined]: WsClientFrameType.Join,
  [WsServerFrameType.Left]: WsClientFrameType.Leave,
  [WsServerFrameType.Pong]: WsClientFrameType.Ping,
  [WsServerFrameType.Authenticated]: WsClientFrameType.Auth,
};

/**
 * Pairs the server's answers on `/ws` with the join, leave, ping and auth frames
 * they answer. Success frames name their room; an error frame names the
 * request it refuses (`request`, and `room` once that was a valid id), and
 * one that names none was sent by the server on its own. The server handles
 * a connection's frames in the order sent, so a success also settles every
 * frame sent before the one it answers; an error settles its frame alone,
 * as one refused because too many frames wait overtakes those, and so does
 * `authenticated`, as a renewal sent while frames wait is handled at once.
 * Broadcasts are answered only when refused, and the error says so: they
 * are not kept.
 */
export class WsReplies {
  private readonly awaiting: AnsweredFrame[] = [];

  sent(frame: WsClientFrame): void {
    if (frame.type !== WsClientFrameType.Broadcast) this.awaiting.push(frame);
  }

  /** The frame it answers; `undefined` for one the server sent on its own (a removal's `left`). */
  answered(frame: SuccessFrame): AnsweredFrame | undefined {
    const alone = frame.type === WsServerFrameType.Authenticated;
    return this.settle(ANSWERS[frame.type], 'room' in frame ? frame.room : undefined, { alone });
  }

  /** The join, leave, ping or auth an error refuses; `undefined` for a broadcast or the server's own notice. */
  refused(error: WsErrorRequest): AnsweredFrame | undefined {
    if (!error.request || error.request === WsClientFrameType.Broadcast) return undefined;
    return this.settle(error.request, error.room, { alone: true });
  }

  /** The connection is gone, and its answers with it. */
  clear(): void {
    this.awaiting.length = 0;
  }

  private settle(
    type: AnsweredFrame['type'],
    room: string | undefined,
    { alone = false } = {},
  ): AnsweredFrame | undefined {
    const id = room?.toLowerCase();
    const index = this.awaiting.findIndex(
      (entry) =>
        entry.type === type && (id === undefined || !('room' in entry) || entry.room === id),
    );
    if (index < 0) return undefined;
    if (alone) return this.awaiting.splice(index, 1)[0];
    // Renewals sent before stay: the server may answer them after this, out of turn.
    const settled = this.awaiting.splice(0, index + 1);
    this.awaiting.unshift(
      ...settled.slice(0, -1).filter((entry) => entry.type === WsClientFrameType.Auth),
    );
    return settled.at(-1);
  }
}
