/** Deeper input is refused before anything walks it recursively (class-transformer does). */
export const MAX_INPUT_DEPTH = 32;

/** How deeply arrays and objects nest in a value, counted without recursion, up to `limit + 1`. */
export function nestingDepth(value: unknown, limit = MAX_INPUT_DEPTH): number {
  let deepest = 0;
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (typeof next.value !== 'object' || next.value === null) continue;
    const depth = next.depth + 1;
    deepest = Math.max(deepest, depth);
    if (depth > limit) return deepest;
    for (const child of Object.values(next.value)) stack.push({ value: child, depth });
  }
  return deepest;
}
