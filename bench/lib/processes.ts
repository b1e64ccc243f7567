import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { sleep } from '../common/clock';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process in its own process group, stopped with the whole group. */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<Exit>;
  isRunning(): boolean;
  output(): string;
  /** The inspector's WebSocket address, once the child has printed it (with `inspect`). */
  inspectorUrl(): string | undefined;
  stop(graceMs?: number): Promise<Exit>;
}

export interface LaunchOptions {
  name: string;
  /** A Node.js script, run with this process's `node`. */
  script: string;
  /** Options for `node` itself, before the script. */
  nodeArgs?: string[];
  /** Arguments of the script. */
  args?: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Pin to this CPU with `taskset` (when it exists). */
  cpu?: number;
  /** Raise the soft limit of open files to this for the child. */
  openFiles?: number;
  /** Open V8's inspector on a free local port (see `ManagedProcess.inspectorUrl`). */
  inspect?: boolean;
  ipc?: boolean;
}

const OUTPUT_LIMIT = 20_000;
/** As Node prints it: `Debugger listening on ws://127.0.0.1:<port>/<id>`. */
const INSPECTOR_URL = /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/;
const running = new Set<ManagedProcess>();
/** Set by `killAllNow`: nothing starts after it. */
let killed = false;

let tasksetFound: boolean | undefined;
/** Why nothing is pinned although `taskset` exists (see `checkPinning`). */
let unpinnable: string | undefined;
const pinnableCpus = new Map<number, boolean>();

/**
 * Whether a `taskset` runs here, found by pinning `true` to CPU 0 (not by
 * `taskset -V`, which BusyBox's lacks): it exists when it started, whatever
 * its exit status, which says whether CPU 0 can be pinned.
 */
export function hasTaskset(): boolean {
  if (tasksetFound === undefined) {
    const probe = spawnSync('taskset', ['-c', '0', 'true']);
    tasksetFound = probe.error === undefined;
    if (tasksetFound) pinnableCpus.set(0, probe.status === 0);
  }
  return tasksetFound;
}

/** Whether `taskset` can pin a process to `cpu` (not if the CPU is missing or outside this process's affinity). */
function canPin(cpu: number): boolean {
  let pinnable = pinnableCpus.get(cpu);
  if (pinnable === undefined) {
    pinnable = hasTaskset() && spawnSync('taskset', ['-c', String(cpu), 'true']).status === 0;
    pinnableCpus.set(cpu, pinnable);
  }
  return pinnable;
}

/** The CPUs this process may run on, as `taskset -cp` lists them, or the count Node sees. */
function availableCpus(): string {
  const listed = spawnSync('taskset', ['-cp', String(process.pid)]).stdout?.toString() ?? '';
  const list = /affinity list:\s*(\S+)/.exec(listed)?.[1];
  return list ? `CPUs ${list}` : `${availableParallelism()} CPUs`;
}

/**
 * Checks once that every CPU the bench pins to can be used. If one cannot
 * (a machine with fewer CPUs, or a cpuset without it), nothing is pinned at
 * all, since servers and load generators sharing a CPU unpinned is fairer
 * than half of them pinned. Returns why nothing is pinned, if so.
 */
export function checkPinning(cpus: readonly number[]): string | undefined {
  if (!hasTaskset()) return undefined;
  const missing = [...new Set(cpus)].filter((cpu) => !canPin(cpu));
  if (missing.length > 0)
    unpinnable = `taskset cannot pin to CPU ${missing.join(', ')} (this process may use ${availableCpus()}): nothing pinned`;
  return unpinnable;
}

/** Whether `taskset` pins: not while profiling, since V8's sampling thread would share the pinned core and miss most busy time. */
export function pinningEnabled(): boolean {
  return hasTaskset() && unpinnable === undefined && !profiling();
}

/** With `BENCH_CPU_PROF_DIR`, every server process writes a V8 CPU profile there when it stops. */
export function profiling(): boolean {
  return Boolean(process.env.BENCH_CPU_PROF_DIR);
}

function commandLine(options: LaunchOptions): string[] {
  let argv = [
    process.execPath,
    ...(options.inspect ? ['--inspect=127.0.0.1:0'] : []),
    ...(options.nodeArgs ?? []),
    options.script,
    ...(options.args ?? []),
  ];
  if (options.cpu !== undefined && pinningEnabled() && canPin(options.cpu))
    argv = ['taskset', '-c', String(options.cpu), ...argv];
  if (options.openFiles !== undefined)
    argv = ['sh', '-c', 'ulimit -n "$0" && exec "$@"', String(options.openFiles), ...argv];
  return argv;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export function launch(options: LaunchOptions): ManagedProcess {
  if (killed) throw new Error(`not starting ${options.name}: the bench is stopping`);
  const [command, ...args] = commandLine(options);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? (['ipc'] as const) : [])],
  });
  if (child.pid === undefined) throw new Error(`Could not start ${options.name}`);
  const pid = child.pid;
  let output = '';
  let inspectorUrl: string | undefined;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
    if (options.inspect) inspectorUrl ??= INSPECTOR_URL.exec(output)?.[0];
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const isRunning = () => child.exitCode === null && child.signalCode === null;
  const managed: ManagedProcess = {
    name: options.name,
    child,
    pid,
    exited,
    isRunning,
    output: () => output,
    inspectorUrl: () => inspectorUrl,
    stop: async (graceMs = 5_000) => {
      if (isRunning()) signalGroup(pid, 'SIGTERM');
      const exit = await Promise.race([exited, sleep(graceMs).then(() => undefined)]);
      signalGroup(pid, 'SIGKILL');
      running.delete(managed);
      return exit ?? exited;
    },
  };
  running.add(managed);
  void exited.then(() => {
    running.delete(managed);
    signalGroup(pid, 'SIGKILL');
  });
  return managed;
}

/** Last resort on exit or a signal: SIGKILL every process group still around. */
export function killAllNow(): void {
  killed = true;
  for (const managed of running) signalGroup(managed.pid, 'SIGKILL');
  running.clear();
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((managed) => managed.stop()));
}
