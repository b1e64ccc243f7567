/**
 * One load per key at a time: callers that ask while it runs share it, and
 * so go on in the order they asked, where loads of their own could finish
 * in any order. What a load finds is kept (`keep`) unless the key was
 * forgotten meanwhile: it may be stale by then.
 */
export class SingleFlight<V> {
  private readonly running = new Map<string, Promise<V>>();

  run(key: string, load: () => Promise<V>, keep: (value: V) => void): Promise<V> {
    const running = this.running.get(key);
    if (running) return running;
    const loading: Promise<V> = load().then(
      (value) => {
        if (this.finish(key, loading)) keep(value);
        return value;
      },
      (error: unknown) => {
        this.finish(key, loading);
        throw error;
      },
    );
    this.running.set(key, loading);
    return loading;
  }

  /** Later callers load again, and the load under way keeps nothing. */
  forget(key: string): void {
    this.running.delete(key);
  }

  /** Whether this load was still the key's. */
  private finish(key: string, loading: Promise<V>): boolean {
    if (this.running.get(key) !== loading) return false;
    this.running.delete(key);
    return true;
  }
}
