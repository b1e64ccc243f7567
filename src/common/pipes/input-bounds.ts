/**
 * What an input may hold before anything builds or checks it. class-transformer
 * walks values recursively, and copies objects in time that grows with the
 * square of their keys: a 1 MB body of 90 000 keys held the event loop for
 * seconds. The bounds are far above any input of the contract; a `/ws`
 * broadcast's payload is the only open-ended one.
 */
export const INPUT_BOUNDS = {
  /** Levels of arrays and objects. */
  depth: 32,
  /** Object keys, all objects together. */
  keys: 1_000,
  /** Array items, all arrays together. */
  items: 10_000,
} as const;

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
