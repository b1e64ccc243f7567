/**
 * The longest leading run of `items` whose JSON takes at most `maxBytes`
 * (as UTF-8), and the first item whatever its size, so that a reader paging
 * through them always moves on.
 */
export function leadingWithinBytes<T>(items: readonly T[], maxBytes: number): T[] {
  let bytes = 0;
  for (let i = 0; i < items.length; i++) {
    bytes += jsonBytes(items[i]);
    if (bytes > maxBytes && i > 0) return items.slice(0, i);
  }
  return [...items];
}

/** The size of `value`'s JSON, as UTF-8. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

/**
 * `jsonBytes` of a value a client sent, walked without recursion: JSON.parse
 * takes nesting deeper than JSON.stringify's stack allows, so measuring such
 * a value by writing it again would throw. Exact for what JSON.parse makes.
 */
export function receivedJsonBytes(value: unknown): number {
  let bytes = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const next = stack.pop();
    if (typeof next === 'string') bytes += Buffer.byteLength(JSON.stringify(next));
    else if (typeof next === 'number' || typeof next === 'boolean') bytes += String(next).length;
    else if (typeof next !== 'object' || next === null) bytes += 'null'.length;
    else if (Array.isArray(next)) {
      bytes += 2 + Math.max(0, next.length - 1);
      for (const item of next as unknown[]) stack.push(item);
    } else {
      const entries = Object.entries(next);
      bytes += 2 + Math.max(0, entries.length - 1);
      for (const [key, item] of entries) {
        bytes += Buffer.byteLength(JSON.stringify(key)) + 1;
        stack.push(item);
      }
    }
  }
  return bytes;
}
