import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

interface ConnectionState {
  /** Its requests' responses not yet written out in full (several when pipelined). */
  responses: ServerResponse[];
  /** What it had read when it last had nothing to answer: more means a request is arriving. */
  readBefore: number;
}

/**
 * A server's HTTP connections as a shutdown must see them: answering
 * requests, writing answers out, receiving one, or idle. Upgraded ones
 * (WebSocket, Socket.IO) are no longer HTTP's, and leave.
 */
export class HttpConnections {
  private readonly connections = new Map<Socket, ConnectionState>();

  /** Also in place of the server's `closeIdleConnections`, which its `close()` calls. */
  watch(server: Server): void {
    server.closeIdleConnections = () => this.closeIdle();
    server.on('connection', (socket: Socket) => {
      this.connections.set(socket, { responses: [], readBefore: 0 });
      socket.once('close', () => this.connections.delete(socket));
    });
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const state = this.connections.get(request.socket);
      if (!state) return;
      state.responses.push(response);
      response.once('finish', () => this.written(state, request, response));
    });
    server.on('upgrade', (request: IncomingMessage) => this.connections.delete(request.socket));
  }

  /** Requests whose response has not ended yet. */
  unanswered(): number {
    return this.count((response) => !response.writableEnded);
  }

  /** Responses ended but still being written out (to a client that reads slowly). */
  writingOut(): number {
    return this.count((response) => response.writableEnded);
  }

  /**
   * Closes the connections between requests, but not one whose next request
   * is arriving, nor one still writing an answer out (unlike Node's own
   * `closeIdleConnections`, which cuts an ended response still flushing).
   */
  closeIdle(): void {
    for (const [socket, { responses, readBefore }] of this.connections) {
      if (responses.length === 0 && socket.bytesRead === readBefore) socket.destroy();
    }
  }

  /** Closes every connection; how many had a response unanswered or still going out. */
  cutAll(): number {
    let busy = 0;
    for (const [socket, { responses }] of this.connections) {
      if (responses.length > 0) busy += 1;
      socket.destroy();
    }
    return busy;
  }

  private written(state: ConnectionState, request: IncomingMessage, response: ServerResponse) {
    state.responses = state.responses.filter((each) => each !== response);
    if (state.responses.length > 0) return;
    // A body answered before it was read (an early 401) is read after: idle once it is.
    const settle = () => {
      if (state.responses.length === 0) state.readBefore = request.socket.bytesRead;
    };
    if (request.complete) settle();
    else request.once('end', settle);
  }

  private count(matches: (response: ServerResponse) => boolean): number {
    let count = 0;
    for (const { responses } of this.connections.values()) {
      if (responses.some(matches)) count += 1;
    }
    return count;
  }
}
