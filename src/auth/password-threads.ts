import { Worker } from 'node:worker_threads';
import { Logger } from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import { reasonOf } from '@app/common/errors/reason-of';
import { OccasionalWarning } from '@app/common/occasional-warning';

export type PasswordTask =
  | { kind: 'hash'; input: string; rounds: number }
  | { kind: 'compare'; input: string; hash: string };

type Answer = { result: string | boolean } | { error: string };

interface Job {
  task: PasswordTask;
  resolve(result: string | boolean): void;
  reject(error: Error): void;
}

/**
 * A worker's whole program: bcryptjs's synchronous calls. Given as source, not
 * as a file, so that it runs the same from `dist/` and under ts-jest.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', (task) => {
  try {
    const result = task.kind === 'hash'
      ? bcrypt.hashSync(task.input, task.rounds)
      : bcrypt.compareSync(task.input, task.hash);
    parentPort.postMessage({ result });
  } catch (error) {
    parentPort.postMessage({ error: String((error && error.message) || error) });
  }
});
`;

/** A thread that runs WORKER_SOURCE. */
export function startHashingThread(): Worker {
  return new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { bcryptPath: require.resolve('bcryptjs') },
  });
}

/** Seconds a refused sign-in is told to wait: about what the queue takes to move on. */
const RETRY_AFTER_SECONDS = 1;
/**
 * After a thread could not start while others work, no other is started for
 * this long: under memory pressure each sign-in would otherwise start
 * another isolate that dies too.
 */
const START_RETRY_MS = 5_000;

/**
 * Password hashing in worker threads. bcrypt is pure JavaScript here and
 * costs a few hundred milliseconds of CPU at production rounds: on the event
 * loop, a handful of logins a second (unknown names cost the same, on
 * purpose) would stall every socket of the node. At most `queueLimit` tasks
 * wait for a thread; more are refused with UNAVAILABLE at once, so that a
 * flood of sign-ins from many addresses costs the node bounded memory and
 * bounded waits instead of a queue that only grows.
 */
export class PasswordThreads {
  private readonly startFailures = new OccasionalWarning(new Logger(PasswordThreads.name));
  private readonly deaths = new OccasionalWarning(new Logger(PasswordThreads.name));
  /** No thread is started before this time (`performance.now()`) while others exist. */
  private noStartsUntil = Number.NEGATIVE_INFINITY;
  /** Threads that came online: running JavaScript, not failed in their start. */
  private readonly started = new WeakSet<Worker>();
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly waiting: Job[] = [];
  private closed = false;

  constructor(
    private readonly threads: number,
    private readonly queueLimit: number,
    private readonly onRefused: () => void = () => undefined,
    private readonly createThread: () => Worker = startHashingThread,
  ) {}

  run(task: PasswordTask): Promise<string | boolean> {
    if (this.closed) return Promise.reject(AppException.unavailable('Shutting down'));
    if (this.waiting.length >= this.queueLimit) {
      this.onRefused();
      return Promise.reject(
        AppException.unavailable('Too many sign-ins at once: retry shortly', RETRY_AFTER_SECONDS),
      );
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, resolve, reject });
      this.dispatch();
    });
  }

  /** Tasks still waiting are refused; those under way end with their threads. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(AppException.unavailable('Shutting down'));
    const workers = [...this.idle, ...this.busy.keys()];
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  /** Tasks waiting for a thread. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Threads hashing or checking a password now. */
  get working(): number {
    return this.busy.size;
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const worker = this.idle.pop() ?? this.spawnOrFail();
      if (!worker) return;
      const job = this.waiting.shift() as Job;
      this.busy.set(worker, job);
      // Kept alive while it works: a start-up waits on its first hash with nothing else to keep it.
      worker.ref();
      worker.postMessage(job.task);
    }
  }

  /**
   * A thread that cannot be created (no memory or threads left) fails what
   * waits when no other thread will take it, with UNAVAILABLE, rather than
   * leaving it queued for good or throwing out of the event handler that
   * got here.
   */
  private spawnOrFail(): Worker | undefined {
    const others = this.busy.size + this.idle.length;
    if (others > 0 && performance.now() < this.noStartsUntil) return undefined;
    try {
      return this.spawn();
    } catch (error) {
      this.noStartsUntil = performance.now() + START_RETRY_MS;
      if (others === 0) this.failWaiting(error);
      return undefined;
    }
  }

  /** Out of threads or memory for now: what waits is told to retry. */
  private failWaiting(cause: unknown): void {
    const refusal = this.startFailure(cause);
    for (const job of this.waiting.splice(0)) job.reject(refusal);
  }

  /** A thread that could not start, logged at most once a minute: for the sign-in, a retry later. */
  private startFailure(cause: unknown): AppException {
    this.startFailures.note(
      (count) => `${count} hashing thread(s) could not be started, the last: ${reasonOf(cause)}`,
    );
    return AppException.unavailable(
      'Sign-ins cannot be handled now: retry shortly',
      RETRY_AFTER_SECONDS,
    );
  }

  private spawn(): Worker | undefined {
    if (this.closed || this.busy.size + this.idle.length >= this.threads) return undefined;
    const worker = this.createThread();
    worker.once('online', () => this.started.add(worker));
    worker.on('message', (answer: Answer) => this.answered(worker, answer));
    worker.on('error', (error) => this.lost(worker, error));
    worker.on('exit', (code) => this.lost(worker, new Error(`Hashing thread exited (${code})`)));
    // Idle threads must not keep a process alive that has nothing else to do. After the
    // listeners: a first 'message' listener refs the worker's port again.
    worker.unref();
    return worker;
  }

  private answered(worker: Worker, answer: Answer): void {
    const job = this.busy.get(worker);
    this.busy.delete(worker);
    this.idle.push(worker);
    worker.unref();
    if ('error' in answer) job?.reject(new Error(answer.error));
    else job?.resolve(answer.result);
    this.dispatch();
  }

  /**
   * A thread that died fails its task; the next task starts another. One
   * that died before it ever ran (no memory for its isolate) could not
   * start, as when it cannot be created.
   */
  private lost(worker: Worker, error: Error): void {
    const job = this.busy.get(worker);
    const index = this.idle.indexOf(worker);
    // Its 'exit' after its 'error': already handled.
    if (!job && index < 0) return;
    this.busy.delete(worker);
    if (index >= 0) this.idle.splice(index, 1);
    if (this.closed) job?.reject(AppException.unavailable('Shutting down'));
    else if (this.started.has(worker)) job?.reject(this.died(error));
    else if (job && this.busy.size + this.idle.length > 0) {
      // As when a thread cannot be created: the task waits for one that works (an idle one
      // takes it now), and no other thread is started for a while.
      this.startFailure(error);
      this.noStartsUntil = performance.now() + START_RETRY_MS;
      this.waiting.unshift(job);
      if (this.idle.length === 0) return;
    } else job?.reject(this.startFailure(error));
    this.dispatch();
  }

  /** A thread that died at work (out of memory, say): for the sign-in, a retry later. */
  private died(cause: Error): AppException {
    this.deaths.note(
      (count) => `${count} hashing thread(s) died at work, the last: ${reasonOf(cause)}`,
    );
    return AppException.unavailable(
      'The sign-in could not be checked: retry shortly',
      RETRY_AFTER_SECONDS,
    );
  }
}
