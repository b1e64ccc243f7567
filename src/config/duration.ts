const SECONDS_PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const MS_PER_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `3600`, `90s`, `15m`, `1h` or `7d` into seconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)([smhd])?$/.exec(value.trim());
  if (!match) throw new Error(`Not a duration: ${value}`);
  return Number(match[1]) * SECONDS_PER_UNIT[match[2] ?? 's'];
}

/** Parses a rate `count/window`, e.g. `20/10s`, into a limit and a window in milliseconds. */
export function parseRate(value: string): { limit: number; windowMs: number } {
  const match = /^([1-9]\d*)\/([1-9]\d*)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new Error(`Not a rate: ${value}`);
  return { limit: Number(match[1]), windowMs: Number(match[2]) * MS_PER_UNIT[match[3] ?? 's'] };
}
