import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessageJson } from '@app/contract/models';
import { spawnService, waitUntilReady, type ServiceProcess } from '../support/service-process';
import { RestClient, type ChatClient, type ConnectionStatus } from '../../client/src';
import { freePort } from '../support/free-port';

/** Fixed, so that tokens issued before a restart stay valid after it. */
export const RESTART_JWT_SECRET = 'sdk-e2e-restart-secret-0123456789abcdefgh';

/** Budgets high enough that reconnecting test clients never hit them. */
const GENEROUS_LIMITS = {
  THROTTLE_AUTH_LIMIT: '100000',
  THROTTLE_DEFAULT_LIMIT: '100000',
  RATE_LIMIT_CONNECTIONS_PER_IP: '100000/60s',
  RATE_LIMIT_CHAT_JOIN: '100000/60s',
  RATE_LIMIT_CHAT_MESSAGE: '100000/10s',
  RATE_LIMIT_CHAT_TYPING: '100000/1s',
  RATE_LIMIT_ROOM_PRESENCE: '100000/60s',
  RATE_LIMIT_USER_LOOKUP: '100000/60s',
  RATE_LIMIT_ROOM_INVITE: '100000/60s',
  RATE_LIMIT_LOGIN_PER_ACCOUNT: '100000/60s',
};

/**
 * The built service as a child process that can be killed and started again
 * on the same port and the same SQLite file, as after a crash.
 */
export class RestartableService {
  private process: ServiceProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'rt-sdk-'));

  private constructor(
    readonly port: number,
    private readonly extraEnv: Record<string, string>,
  ) {}

  static async start(extraEnv: Record<string, string> = {}): Promise<RestartableService> {
    const service = new RestartableService(await freePort(), extraEnv);
    try {
      await service.start();
    } catch (error) {
      await service.dispose();
      throw error;
    }
    return service;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The service's SQLite file: change it only while the service is down. */
  get sqlitePath(): string {
    return join(this.dir, 'app.sqlite');
  }

  async start(): Promise<void> {
    this.process = spawnService({
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(this.port),
      SQLITE_PATH: this.sqlitePath,
      JWT_SECRET: RESTART_JWT_SECRET,
      LOG_LEVEL: 'warn',
      BCRYPT_ROUNDS: '4',
      ...GENEROUS_LIMITS,
      ...this.extraEnv,
    });
    await waitUntilReady(this.process, 30_000);
  }

  /** What the running process printed, for failure messages. */
  output(): string {
    return this.process?.output() ?? '(not running)';
  }

  get running(): boolean {
    return this.process?.child.exitCode === null;
  }

  /** A crash: no drain, no goodbye to the clients. */
  async kill(): Promise<void> {
    await this.process?.stop('SIGKILL');
    this.process = undefined;
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls until `condition` holds; the message says what was awaited. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function waitForStatus(
  client: Pick<ChatClient, 'state'>,
  status: ConnectionStatus,
  timeoutMs = 30_000,
): Promise<void> {
  return waitFor(`state ${status}`, () => client.state.status === status, timeoutMs);
}

/** Every stored message of a room, oldest first, paging REST history. */
export async function fullHistory(
  url: string,
  token: string,
  roomId: string,
): Promise<MessageJson[]> {
  const rest = new RestClient({ baseUrl: url, token: () => token });
  const messages: MessageJson[] = [];
  for (let since: number | null = 0; since !== null;) {
    const page = await rest.history(roomId, { since, limit: 200 });
    messages.push(...page.items);
    since = page.nextCursor;
  }
  return messages;
}

/** Collects what a client delivers to the application. */
export function recordMessages(client: ChatClient): MessageJson[] {
  const received: MessageJson[] = [];
  client.on('message', (message) => received.push(message));
  return received;
}
