/** How many ids one `IN (...)` list carries: far below SQLite's and PostgreSQL's limits on parameters. */
const IDS_PER_QUERY = 1_000;

/** `items` in consecutive slices of at most `size`. */
export function chunksOf<T>(items: readonly T[], size = IDS_PER_QUERY): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size)
    chunks.push(items.slice(start, start + size));
  return chunks;
}
