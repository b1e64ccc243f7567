import type { DeliveryService } from '@app/delivery/delivery.service';

/**
 * Starts a resync that lasts until the returned function is called: what
 * the bus brings meanwhile is held back, as when this node lost Redis and
 * reads what it missed. Removals are seen as they arrive all the same.
 */
export function holdDeliveries(delivery: DeliveryService): () => void {
  let end!: () => void;
  const running = new Promise<void>((resolve) => (end = resolve));
  const detach = delivery.onResync(() => running);
  (delivery as unknown as { resync(): void }).resync();
  return () => {
    detach();
    end();
  };
}

/** A call held by `holdNextCall`: `started` once it is under way, `release` to let it finish. */
export interface HeldCall {
  started: Promise<void>;
  /** Once the real call has settled, after `release`. */
  finished: Promise<void>;
  release(): void;
}

type AsyncMethod = (...args: never[]) => Promise<unknown>;

/**
 * Holds the next call of `object[method]`, so that a test can act while it
 * is under way: before the real call runs, or (`after: true`) once it has
 * answered, with its answer kept back until `release`.
 */
export function holdNextCall<T extends object>(
  object: T,
  method: keyof T & string,
  { after = false }: { after?: boolean } = {},
): HeldCall {
  const original = (object[method] as AsyncMethod).bind(object);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let begin!: () => void;
  const started = new Promise<void>((resolve) => (begin = resolve));
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const held = async (...args: never[]) => {
    if (after) {
      const answer = await Promise.resolve(original(...args)).finally(finish);
      begin();
      await released;
      return answer;
    }
    begin();
    await released;
    return Promise.resolve(original(...args)).finally(finish);
  };
  jest.spyOn(object, method as never).mockImplementationOnce(held as never);
  return { started, finished, release };
}
