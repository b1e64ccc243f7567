export interface InputBounds {
  /** Levels of arrays and objects. */
  depth: number;
  /** Object keys, all objects together. */
  keys: number;
  /** Array items, all arrays together. */
  items: number;
}

/**
 * What an input may hold before class-transformer builds it: it walks values
 * recursively, and copies objects in time that grows with the square of
 * their keys (a 1 MB body of 90 000 keys held the event loop for about
 * 19 s). The pipe bounds depth first, since a DTO's validation plan copies
 * too; keys and items only for what the plan did not accept at once, which
 * takes the full path: a valid `/ws` broadcast payload, the one open-ended
 * input of the contract, is bounded by the frame size alone.
 */
export const INPUT_BOUNDS: InputBounds = { depth: 32, keys: 1_000, items: 10_000 };

/** The depth bound alone. */
export const DEPTH_BOUND: InputBounds = { ...INPUT_BOUNDS, keys: Infinity, items: Infinity };

/**
 * Why the value exceeds the bounds, or undefined when it does not; walked
 * without recursion, and only until the first bound is passed.
 */
export function inputExcess(value: unknown, bounds = INPUT_BOUNDS): string | undefined {
  let [keys, items] = [0, 0];
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (typeof next.value !== 'object' || next.value === null) continue;
    const depth = next.depth + 1;
    if (depth > bounds.depth) return `Input may be nested at most ${bounds.depth} levels deep`;
    const children = Object.values(next.value);
    if (Array.isArray(next.value)) items += children.length;
    else keys += children.length;
    if (keys > bounds.keys) return `Input may hold at most ${bounds.keys} keys`;
    if (items > bounds.items) return `Input may hold at most ${bounds.items} array items`;
    for (const child of children) stack.push({ value: child, depth });
  }
  return undefined;
}
