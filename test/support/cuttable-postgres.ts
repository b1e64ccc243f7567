import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './service-process';

/** A TCP proxy in front of the PostgreSQL of DATABASE_URL that a test can cut (an outage) and open again. */
export class CuttablePostgres {
  private server?: Server;
  private readonly sockets = new Set<Socket>();

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
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  /** Drops every connection and refuses new ones. */
  async cut(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server?.listening) await new Promise((resolve) => server.close(resolve));
  }
}
