import { TcpProxy } from './tcp-proxy';
import { freePort } from './free-port';

/** A `TcpProxy` in front of the PostgreSQL of DATABASE_URL. */
export class CuttablePostgres extends TcpProxy {
  private constructor(
    port: number,
    private readonly target: URL,
  ) {
    super(port, target.hostname, Number(target.port || 5432));
  }

  static override async start(): Promise<CuttablePostgres> {
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
}
