import type { Summary } from '../common/summary';

export function num(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '—';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(abs >= 100 ? 0 : digits);
}

export function kib(bytes: number): string {
  return `${num(bytes / 1024)} KiB`;
}

export function ms(value: number): string {
  return num(value, value < 10 ? 2 : 1);
}

export function percentiles(summary: Summary, keys: Array<'p50' | 'p95' | 'p99'>): string {
  if (summary.count === 0) return '—';
  return `${keys.map((key) => ms(summary[key])).join(' / ')} ms`;
}

export function ratio(service: number, baseline: number): number | undefined {
  return baseline > 0 && Number.isFinite(service) ? service / baseline : undefined;
}
