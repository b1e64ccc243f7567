import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import { AppException } from '@app/common/errors/app.exception';
import { ErrorCode } from '@app/common/errors/error-code';
import { PasswordThreads, startHashingThread } from './password-threads';

/** Costly enough (tenths of a second) that a queue forms behind it. */
const SLOW_ROUNDS = 11;

function refusal(error: unknown) {
  const exception = error as AppException;
  return { code: exception.code, retryAfter: exception.retryAfterSeconds };
}

const creationFailure = new Error('ERR_WORKER_INIT_FAILED');

/** A thread that dies in its start (no memory for its isolate): no 'online', an error, an exit. */
function stillbornThread(): Worker {
  const stillborn = Object.assign(new EventEmitter(), {
    postMessage: () =>
      setImmediate(() => {
        stillborn.emit('error', new Error('ERR_WORKER_INIT_FAILED'));
        stillborn.emit('exit', 1);
      }),
    ref: () => undefined,
    unref: () => undefined,
    terminate: () => Promise.resolve(0),
  });
  return stillborn as unknown as Worker;
}

/** Creates hashing threads, except while `fails()` says thread creation fails. */
const failingWhile = (fails: () => boolean) => () => {
  if (fails()) throw creationFailure;
  return startHashingThread();
};

describe('PasswordThreads', () => {
  let threads: PasswordThreads;
  afterEach(() => threads.close());

  it('hashes and compares as bcrypt does', async () => {
    threads = new PasswordThreads(1, 10);
    const hash = (await threads.run({ kind: 'hash', input: 'secret', rounds: 4 })) as string;
    expect(await bcrypt.compare('secret', hash)).toBe(true);
    expect(await threads.run({ kind: 'compare', input: 'secret', hash })).toBe(true);
    expect(await threads.run({ kind: 'compare', input: 'guess', hash })).toBe(false);
  });

  it('leaves the event loop idle while a costly hash runs', async () => {
    threads = new PasswordThreads(1, 10);
    await threads.run({ kind: 'hash', input: 'warm-up', rounds: 4 });
    const start = performance.eventLoopUtilization();
    await threads.run({ kind: 'hash', input: 'secret', rounds: SLOW_ROUNDS });
    // bcryptjs on the event loop keeps it busy nearly all along (utilization close to 1).
    expect(performance.eventLoopUtilization(start).utilization).toBeLessThan(0.5);
  });

  it('refuses at once, with UNAVAILABLE and a retry hint, what the full queue cannot take', async () => {
    const onRefused = jest.fn();
    threads = new PasswordThreads(1, 2, onRefused);
    const task = { kind: 'hash', input: 'secret', rounds: SLOW_ROUNDS } as const;
    const accepted = [threads.run(task), threads.run(task), threads.run(task)];
    expect({ queued: threads.queued, working: threads.working }).toEqual({ queued: 2, working: 1 });
    expect(onRefused).not.toHaveBeenCalled();
    const refused = await threads.run(task).catch(refusal);
    expect(refused).toEqual({ code: ErrorCode.Unavailable, retryAfter: 1 });
    expect(onRefused).toHaveBeenCalledTimes(1);
    expect(await Promise.all(accepted)).toHaveLength(3);
    expect({ queued: threads.queued, working: threads.working }).toEqual({ queued: 0, working: 0 });
  });

  it('fails the task of a thread that errs or dies, and goes on with another thread', async () => {
    threads = new PasswordThreads(1, 10);
    const malformed = { kind: 'compare', input: 'secret', hash: 42 } as never;
    await expect(threads.run(malformed)).rejects.toThrow(/Illegal arguments/);

    const slow = threads.run({ kind: 'hash', input: 'secret', rounds: SLOW_ROUNDS });
    const next = threads.run({ kind: 'hash', input: 'next', rounds: 4 });
    // The pool's one thread, killed while it works.
    const [worker] = (threads as unknown as { busy: Map<Worker, unknown> }).busy.keys();
    await worker.terminate();
    // A passing condition (out of memory, say), as when a thread cannot start: retry shortly.
    expect(await slow.catch(refusal)).toEqual({ code: ErrorCode.Unavailable, retryAfter: 1 });
    expect(await bcrypt.compare('next', (await next) as string)).toBe(true);
  });

  it('fails what waits when no thread can be created, and goes on once one can', async () => {
    let canCreate = false;
    threads = new PasswordThreads(
      2,
      10,
      undefined,
      failingWhile(() => !canCreate),
    );
    const task = { kind: 'hash', input: 'secret', rounds: 4 } as const;
    const failed = await Promise.allSettled([threads.run(task), threads.run(task)]);
    expect(
      failed.map((outcome) => outcome.status === 'rejected' && refusal(outcome.reason)),
    ).toEqual([
      { code: ErrorCode.Unavailable, retryAfter: 1 },
      { code: ErrorCode.Unavailable, retryAfter: 1 },
    ]);
    expect(threads.queued).toBe(0);
    canCreate = true;
    expect(await threads.run({ kind: 'compare', input: 'a', hash: bcrypt.hashSync('a', 4) })).toBe(
      true,
    );
  });

  it('answers UNAVAILABLE for a thread that died before it ever ran, and goes on with another', async () => {
    let starts = 0;
    threads = new PasswordThreads(1, 10, undefined, () =>
      ++starts === 1 ? stillbornThread() : startHashingThread(),
    );
    const task = { kind: 'hash', input: 'secret', rounds: 4 } as const;

    expect(await threads.run(task).catch(refusal)).toEqual({
      code: ErrorCode.Unavailable,
      retryAfter: 1,
    });
    expect(typeof (await threads.run(task))).toBe('string');
  });

  it('starts no thread for each later sign-in while one that could not start is recent', async () => {
    let starts = 0;
    threads = new PasswordThreads(4, 10, undefined, () =>
      ++starts === 1 ? startHashingThread() : stillbornThread(),
    );
    const slow = threads.run({ kind: 'hash', input: 'secret', rounds: SLOW_ROUNDS });
    const later: Promise<string | boolean>[] = [];
    for (let i = 0; i < 5; i += 1) {
      later.push(threads.run({ kind: 'hash', input: `next ${i}`, rounds: 4 }));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await expect(Promise.all([slow, ...later])).resolves.toHaveLength(6);
    expect(starts).toBe(2);
  });

  it('has a task whose thread died before it ran wait for a thread that works, when one does', async () => {
    let starts = 0;
    threads = new PasswordThreads(2, 10, undefined, () =>
      ++starts === 2 ? stillbornThread() : startHashingThread(),
    );
    const slow = threads.run({ kind: 'hash', input: 'secret', rounds: SLOW_ROUNDS });
    const next = threads.run({ kind: 'hash', input: 'next', rounds: 4 });
    await expect(Promise.all([slow, next])).resolves.toHaveLength(2);
    expect(starts).toBe(2);
  });

  it('hands a task whose thread died before it ran to a thread that went idle meanwhile', async () => {
    let starts = 0;
    /** Dies in its start only once the first thread has answered, and is idle. */
    const lateStillborn = (): Worker => {
      const thread = stillbornThread();
      const post = thread.postMessage.bind(thread);
      thread.postMessage = (task: unknown) => void firstDone.then(() => post(task));
      return thread;
    };
    threads = new PasswordThreads(2, 10, undefined, () =>
      ++starts === 2 ? lateStillborn() : startHashingThread(),
    );
    const first = threads.run({ kind: 'hash', input: 'first', rounds: 4 });
    const firstDone = first.then(() => undefined);
    const second = threads.run({ kind: 'hash', input: 'second', rounds: 4 });
    await expect(Promise.all([first, second])).resolves.toHaveLength(2);
    expect(starts).toBe(2);
  });

  it('leaves what waits queued for a working thread when another cannot be created', async () => {
    let canCreate = true;
    threads = new PasswordThreads(
      2,
      10,
      undefined,
      failingWhile(() => !canCreate),
    );
    const slow = threads.run({ kind: 'hash', input: 'secret', rounds: SLOW_ROUNDS });
    canCreate = false;
    const next = threads.run({ kind: 'hash', input: 'next', rounds: 4 });
    expect({ queued: threads.queued, working: threads.working }).toEqual({ queued: 1, working: 1 });
    await expect(Promise.all([slow, next])).resolves.toHaveLength(2);
  });

  it('keeps the process alive while a thread works, and not while all are idle', async () => {
    const ports = () =>
      process.getActiveResourcesInfo().filter((resource) => resource === 'MessagePort').length;
    const before = ports();
    threads = new PasswordThreads(1, 10);
    const hashing = threads.run({ kind: 'hash', input: 'secret', rounds: 4 });
    expect(ports()).toBe(before + 1);
    await hashing;
    expect(ports()).toBe(before);
  });

  it('refuses what still waits when closed, and anything asked after', async () => {
    threads = new PasswordThreads(1, 10);
    const task = { kind: 'hash', input: 'secret', rounds: SLOW_ROUNDS } as const;
    const running = threads.run(task).catch(refusal);
    const waiting = threads.run(task).catch(refusal);
    await threads.close();
    const unavailable = { code: ErrorCode.Unavailable, retryAfter: undefined };
    expect(await running).toEqual(unavailable);
    expect(await waiting).toEqual(unavailable);
    expect(await threads.run(task).catch(refusal)).toEqual(unavailable);
  });
});
