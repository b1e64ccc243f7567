const settled = () => undefined;

/** Runs tasks one at a time, in the order they were queued. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.then(settled, settled);
    return result;
  }
}

/**
 * A `SerialQueue` per key, held only while the key has tasks queued, so
 * that keys with nothing to run (idle connections) cost nothing.
 */
export class KeyedSerialQueue<K> {
  private readonly tails = new Map<K, Promise<unknown>>();

  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(settled, settled);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** `task` once the tasks of `key` queued so far have settled, without holding later ones. */
  after<T>(key: K, task: () => Promise<T>): Promise<T> {
    const tail = this.tails.get(key);
    return tail ? tail.then(task) : task();
  }

  /** Whether a task of `key` is queued or running: one asked now would wait. */
  has(key: K): boolean {
    return this.tails.has(key);
  }

  /** Keys with tasks queued or running. */
  get size(): number {
    return this.tails.size;
  }
}

/**
 * Settles, per key, each answer only once those asked before it under that
 * key have settled: work that runs side by side but must answer in the order
 * it was asked.
 */
export class KeyedInOrder<K> {
  private readonly last = new Map<K, Promise<unknown>>();

  inOrder<T>(key: K, answer: Promise<T>): Promise<T> {
    const previous = this.last.get(key);
    const ordered = previous
      ? previous.then(
          () => answer,
          () => answer,
        )
      : answer;
    this.last.set(key, ordered);
    const forget = () => {
      if (this.last.get(key) === ordered) this.last.delete(key);
    };
    ordered.then(forget, forget);
    return ordered;
  }
}
