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
