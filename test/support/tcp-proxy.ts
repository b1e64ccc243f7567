import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './free-port';

/**
 * A TCP proxy a test can cut (an outage) and open again, or stall (a peer
 * that keeps its connections and never answers): for all connections, or
 * only for those open now.
 */
export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Set<Socket>();
  private stalled = false;
  /** Client sockets of connections that forward nothing any more, whatever `stalled` says. */
  private readonly stalledConnections = new Set<Socket>();
  /** Client sockets of connections that carry what their client sends, and drop every reply. */
  private readonly mutedConnections = new Set<Socket>();
  /** Client sockets of connections muted once their client sends these bytes. */
  private readonly mutedAfter = new Map<Socket, string>();

  protected constructor(
    readonly port: number,
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(await freePort(), targetHost, targetPort);
    await proxy.open();
    return proxy;
  }

  async open(): Promise<void> {
    // Half-open allowed: a stalled peer does not answer a goodbye either.
    const server = createServer({ allowHalfOpen: true }, (client) => this.forward(client));
    this.server = server;
    // Reopened after a cut, the port may have been taken meanwhile: say so rather than hang.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** Client connections accepted so far. */
  opened = 0;

  /** Client connections open now whose client has not closed its side. */
  get openNow(): number {
    return [...this.clients].filter((client) => !client.readableEnded).length;
  }

  /** From now on nothing is forwarded either way, on open connections and new ones alike. */
  stall(): void {
    this.stalled = true;
  }

  /** The connections open now forward nothing any more; new ones work. */
  stallOpenConnections(): void {
    for (const client of this.clients) this.stalledConnections.add(client);
  }

  /**
   * Once a connection open now carries `marker` from its client (a
   * statement's name), it still carries what its client sends, but no reply
   * comes back: an answer lost after the server acted on the request. New
   * connections work.
   */
  muteRepliesOnOpenConnectionsAfter(marker: string): void {
    for (const client of this.clients) this.mutedAfter.set(client, marker);
  }

  /** Forwards again, on open connections and new ones alike; what came meanwhile is lost. */
  resume(): void {
    this.stalled = false;
    this.stalledConnections.clear();
    this.mutedConnections.clear();
    this.mutedAfter.clear();
  }

  /** Drops every connection and refuses new ones; a stall ends with it. */
  async cut(): Promise<void> {
    this.stalled = false;
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server?.listening) await new Promise((resolve) => server.close(resolve));
  }

  private forward(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    }
    this.clients.add(client);
    this.opened += 1;
    client.on('close', () => {
      this.clients.delete(client);
      this.stalledConnections.delete(client);
      this.mutedConnections.delete(client);
      this.mutedAfter.delete(client);
    });
    const flows = () => !this.stalled && !this.stalledConnections.has(client);
    client.on('data', (chunk: Buffer) => {
      if (!flows()) return;
      const marker = this.mutedAfter.get(client);
      if (marker !== undefined && chunk.includes(marker)) this.mutedConnections.add(client);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (flows() && !this.mutedConnections.has(client)) client.write(chunk);
    });
    client.on('end', () => {
      if (flows()) upstream.end();
    });
    upstream.on('end', () => {
      if (flows()) client.end();
    });
  }
}
