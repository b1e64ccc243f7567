import type { LoaderCommand, LoaderReply } from '../common/protocol';
import { withTimeout } from '../common/clock';
import { launch, type ManagedProcess } from './processes';
import { REPO_ROOT, scripts } from './paths';
import { cpuMs } from './proc-stats';

export type LoaderKind = 'socketio' | 'ws';

type ReplyOf<K extends LoaderReply['type']> = Extract<LoaderReply, { type: K }>;

interface Pending {
  resolve(reply: LoaderReply): void;
  reject(error: Error): void;
}

/** A load generator child process, driven one command at a time over IPC. */
export class Loader {
  private pending?: Pending;

  private constructor(readonly process: ManagedProcess) {
    process.child.on('message', (reply: LoaderReply) => {
      const pending = this.pending;
      this.pending = undefined;
      if (!pending) return;
      if (reply.type === 'error') pending.reject(new Error(`load generator: ${reply.message}`));
      else pending.resolve(reply);
    });
    void process.exited.then((exit) => {
      const message = `load generator exited (${exit.code ?? exit.signal})\n${process.output()}`;
      this.pending?.reject(new Error(message));
      this.pending = undefined;
    });
  }

  static start(kind: LoaderKind, cpu: number, openFiles?: number): Loader {
    const child = launch({
      name: `${kind} load generator`,
      script: kind === 'socketio' ? scripts.socketioLoad : scripts.wsLoad,
      env: { PATH: process.env.PATH, NODE_ENV: 'production' },
      cwd: REPO_ROOT,
      ipc: true,
      cpu,
      openFiles,
    });
    return new Loader(child);
  }

  cpuMs(): number {
    return cpuMs(this.process.pid);
  }

  request<K extends LoaderReply['type']>(
    command: LoaderCommand,
    expected: K,
    timeoutMs: number,
  ): Promise<ReplyOf<K>> {
    if (this.pending) throw new Error('one command at a time');
    const reply = new Promise<LoaderReply>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.process.child.send(command);
    });
    return withTimeout(reply, timeoutMs, `load generator: no answer to "${command.type}"`).then(
      (answer) => {
        if (answer.type !== expected)
          throw new Error(`load generator answered ${answer.type}, not ${expected}`);
        return answer as ReplyOf<K>;
      },
      (error: unknown) => {
        this.pending = undefined;
        throw error;
      },
    );
  }

  /** Closes its connections and waits for it to exit; kills it if it does not. */
  async close(): Promise<void> {
    if (this.process.isRunning() && !this.pending) {
      try {
        await this.request({ type: 'close' }, 'closed', 10_000);
      } catch {
        // Stopped below either way.
      }
    }
    await this.process.stop(2_000);
  }
}
