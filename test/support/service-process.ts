import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RawEnvironment } from '@app/config/env.validation';

export const REPO_ROOT = join(__dirname, '..', '..');
export const SERVICE_ENTRY = join(REPO_ROOT, 'dist', 'src', 'main.js');

/** The built service as a separate process, with its output captured. */
export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** stdout and stderr as they arrived. */
  output(): string;
  /** stderr alone. */
  errors(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function assertBuilt(): void {
  if (!existsSync(SERVICE_ENTRY)) {
    throw new Error(`${SERVICE_ENTRY} is missing: run "npm run build" (npm test does it first)`);
  }
}

/**
 * Starts the service; `env` is the whole environment besides PATH. As PID 1
 * of a PID namespace of its own (`unshare`, which needs root), it sees signals
 * as in a container; `child` is then `unshare`, whose child is the service.
 */
export function spawnService(
  env: RawEnvironment,
  cwd = REPO_ROOT,
  { asPid1 = false } = {},
): ServiceProcess {
  assertBuilt();
  const port = env.PORT ?? '0';
  const [command, args] = asPid1
    ? ['unshare', ['--pid', '--fork', '--kill-child', process.execPath, SERVICE_ENTRY]]
    : [process.execPath, [SERVICE_ENTRY]];
  const child = spawn(command, args, {
    cwd,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let errors = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    errors += chunk.toString();
  });
  // 'close' rather than 'exit': by then everything written has been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    errors: () => errors,
    exited,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Resolves once `/health/ready` answers 200; rejects if the process dies or time runs out. */
export async function waitUntilReady(service: ServiceProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { exitCode, signalCode } = service.child;
    if (exitCode !== null || signalCode !== null) {
      throw new Error(`Service exited with ${exitCode ?? signalCode}:\n${service.output()}`);
    }
    try {
      const response = await fetch(`${service.url}/health/ready`);
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Service not ready after ${timeoutMs} ms:\n${service.output()}`);
}
