import { WebSocket, type ClientOptions } from 'ws';

export interface Frame {
  type: string;
  [key: string]: unknown;
}

/** A plain `ws` client as a client of the reference design writes it, plus an inbox for tests. */
export class RawClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: WebSocket) {
    socket.on('error', () => undefined); // a close follows, which the tests look at
    socket.on('message', (data: Buffer) =>
      this.frames.push(JSON.parse(data.toString('utf8')) as Frame),
    );
    this.closed = new Promise((resolve) =>
      socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static open(url: string, token?: string, options: ClientOptions = {}): RawClient {
    const wsUrl = `${url.replace(/^http/, 'ws')}/ws${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`;
    return new RawClient(new WebSocket(wsUrl, options));
  }

  /** Opens and waits for the server's `connected` frame. */
  static async connect(
    url: string,
    token?: string,
    options: ClientOptions = {},
  ): Promise<RawClient> {
    const client = RawClient.open(url, token, options);
    await client.next((frame) => frame.type === 'connected');
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first received frame (already received or still to come) that matches. */
  async next(matches: (frame: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(matches);
      if (found) {
        this.frames.splice(this.frames.indexOf(found), 1);
        return found;
      }
      if (Date.now() > deadline)
        throw new Error(
          `No matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async request(frame: unknown, expectedType: string): Promise<Frame> {
    this.send(frame);
    return this.next((received) => received.type === expectedType || received.type === 'error');
  }

  close(): void {
    this.socket.close();
  }
}
