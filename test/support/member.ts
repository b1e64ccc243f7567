import type { MessageJson } from '@app/contract/models';
import type { JoinResult } from '@app/contract/socket-events';
import { connectSocket, emitOk, type ClientSocket } from './sockets';

/**
 * A room member as a careful client behaves: it records every chat:message
 * exactly as the server sends it, and when its node goes away it reconnects
 * to another one and rejoins with `since`.
 */
export class RoomMember {
  /** Everything received, in arrival order, duplicates included: the tests check there are none. */
  readonly received: MessageJson[] = [];
  private socket?: ClientSocket;
  reconnections = 0;

  constructor(
    private readonly token: string,
    private readonly roomId: string,
    private readonly nodes: () => string[],
  ) {}

  get lastSeq(): number {
    return this.received.reduce((max, message) => Math.max(max, message.seq), 0);
  }

  async join(url: string, since?: number): Promise<void> {
    const socket = await connectSocket(url, this.token);
    socket.on('chat:message', (message) => this.received.push(message));
    // Recorded in the ack callback itself: after an `await`, a live message that came in the
    // same read as the ack would already have been recorded ahead of the missed ones.
    await emitOk<JoinResult>(
      socket,
      'chat:join',
      since === undefined ? { roomId: this.roomId } : { roomId: this.roomId, since },
      (result) => this.received.push(...result.missed),
    );
    socket.once('disconnect', () => void this.failOver(url));
    this.socket = socket;
  }

  close(): void {
    this.socket?.removeAllListeners('disconnect');
    this.socket?.close();
  }

  private async failOver(lost: string): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const others = this.nodes().filter((url) => url !== lost);
      const target = others[attempt % others.length];
      try {
        await this.join(target, this.lastSeq);
        this.reconnections += 1;
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
}
