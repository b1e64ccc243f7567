export type Listener<T> = (payload: T) => void;

/**
 * A minimal typed event emitter that runs in browsers and Node alike.
 * A listener that throws does not stop the others, nor the SDK.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown }> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const set = this.listeners.get(event) ?? new Set();
    set.add(listener);
    this.listeners.set(event, set);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener);
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as Listener<Events[K]>)(payload);
      } catch (error) {
        reportListenerError(error);
      }
    }
  }

  protected removeAllListeners(): void {
    this.listeners.clear();
  }
}

function reportListenerError(error: unknown): void {
  // Surfaces the bug asynchronously, the way an uncaught DOM event handler error is.
  setTimeout(() => {
    throw error;
  }, 0);
}
