import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './service-process';

/**
 * A TCP proxy in front of the PostgreSQL of DATABASE_URL that a test can cut
 * (an outage) and open again, or stall (a database that takes queries and
 * never answers).
 */
export class CuttablePostgres {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Set<Socket>();
  private stalled = false;
  /** Client sockets of connections that forward nothing any more, whatever `stalled` says. */
  private readonly stalledConnections = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: URL,
  ) {}

  static async start(): Promise<CuttablePostgres> {
    const proxy = new CuttablePostgres(await freePort(), new URL(process.env.DATABASE_URL!));
    await proxy.open();
    return proxy;
  }

  /** DATABASE_URL, through the proxy. */
  get url(): string {
    const proxied = new URL(this.target);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(this.port);
    return proxied.toString();
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(Number(this.target.port || 5432), this.target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => this.sockets.delete(socket));
      }
      const flows = () => !this.stalled && !this.stalledConnections.has(client);
      client.on('data', (chunk: Buffer) => {
        if (flows()) upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (flows()) client.write(chunk);
      });
      client.on('close', () => this.stalledConnections.delete(client));
      this.clients.add(client);
      client.on('close', () => this.clients.delete(client));
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  /** From now on nothing is forwarded either way, on open connections and new ones alike. */
  stall(): void {
    this.stalled = true;
  }

  /** The connections open now forward nothing any more; new ones work (a failover behind a stale route). */
  stallOpenConnections(): void {
    for (const client of this.clients) this.stalledConnections.add(client);
  }

  /** Drops every connection and refuses new ones; a stall ends with it. */
  async cut(): Promise<void> {
    this.stalled = false;
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server?.listening) await new Promise((resolve) => server.close(resolve));
  }
}
