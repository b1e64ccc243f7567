import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

interface ConnectionState {
  /** The response it is answering, until written out in full. */
  response?: ServerResponse;
  /** What it had read when its last response was written out: more means a request is arriving. */
  readBefore: number;
}

/**
 * A server's HTTP connections as a shutdown must see them: answering a
 * request, writing an answer out, receiving one, or idle. Upgraded ones
 * (WebSocket, Socket.IO) are no longer HTTP's, and leave.
 */
export class HttpConnections {
  private readonly connections = new Map<Socket, ConnectionState>();

  watch(server: Server): void {
    server.on('connection', (socket: Socket) => {
      this.connections.set(socket, { readBefore: 0 });
      socket.once('close', () => this.connections.delete(socket));
    });
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const state = this.connections.get(request.socket);
      if (!state) return;
      state.response = response;
      response.once('finish', () => {
        if (state.response !== response) return;
        state.response = undefined;
        state.readBefore = request.socket.bytesRead;
      });
    });
    server.on('upgrade', (request: IncomingMessage) => this.connections.delete(request.socket));
  }

  /** Requests whose response has not ended yet. */
  unanswered(): number {
    let count = 0;
    for (const { response } of this.connections.values()) {
      if (response && !response.writableEnded) count += 1;
    }
    return count;
  }

  /**
   * Closes the connections between requests, but not one whose next request
   * is arriving, nor one still writing an answer out (unlike Node's
   * `closeIdleConnections`, which cuts an ended response still flushing).
   */
  closeIdle(): void {
    for (const [socket, { response, readBefore }] of this.connections) {
      if (!response && socket.bytesRead === readBefore) socket.destroy();
    }
  }

  /**
   * Closes every connection but those writing out an answer already ended.
   * @returns how many of them had a request unanswered
   */
  cutAllButAnswered(): number {
    let unanswered = 0;
    for (const [socket, { response }] of this.connections) {
      if (response?.writableEnded) continue;
      if (response) unanswered += 1;
      socket.destroy();
    }
    return unanswered;
  }
}
