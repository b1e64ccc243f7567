import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * With `BENCH_PERF_DIR`, every measured run is sampled by Linux `perf` on the
 * server processes, pinned as usual: CPU time as `/proc` counts it, compiler,
 * GC and kernel included, which a V8 profile does not show.
 */
export function perfDir(): string | undefined {
  return process.env.BENCH_PERF_DIR || undefined;
}

/**
 * Node options that let `perf` name JavaScript frames (`/tmp/perf-<pid>.map`).
 * The map records where code was created, not where the GC moves it later,
 * so code space is not compacted: moved hot code would be named after
 * whatever was created at its new address first.
 */
export function perfNodeArgs(): string[] {
  return perfDir() ? ['--perf-basic-prof', '--no-compact-code-space'] : [];
}

let perfChecked: boolean | undefined;

function hasPerf(): boolean {
  perfChecked ??= spawnSync('perf', ['--version']).status === 0;
  return perfChecked;
}

const baseName = (label: string) => label.replace(/[^\w.-]+/g, '-').replace(/^-|-$/g, '');

/**
 * Starts sampling `pids` into `<BENCH_PERF_DIR>/<label>.data`. The returned
 * function stops it and keeps each process's symbols as they were at that
 * moment, in `<label>.perf-<pid>.map` (see `keepNewestSymbols`).
 */
export function startPerfRecord(label: string, pids: number[]): () => Promise<void> {
  const dir = perfDir();
  if (!dir || !hasPerf()) return () => Promise.resolve();
  mkdirSync(dir, { recursive: true });
  const base = join(dir, baseName(label));
  const perf = spawn(
    'perf',
    ['record', '--quiet', '-F', '999', '-g', '-p', pids.join(','), '-o', `${base}.data`],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => perf.once('exit', () => resolve()));
  return async () => {
    perf.kill('SIGINT');
    await exited;
    for (const pid of pids) keepNewestSymbols(pid, `${base}.perf-${pid}.map`);
  };
}

interface MapEntry {
  start: number;
  end: number;
  line: string;
}

/** Where `entry` goes among `kept` (sorted by start, disjoint): the first that ends after it starts. */
function placeOf(kept: MapEntry[], entry: MapEntry): number {
  let low = 0;
  let high = kept.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (kept[middle].end <= entry.start) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Copies a server's `/tmp/perf-<pid>.map` to `target`, keeping, where entries
 * overlap, only the newest. V8 frees code and creates new code at the same
 * addresses, appending each creation to the map, and `perf` would name a
 * sample after whatever code was there first (often startup code); code
 * created after the run (at shutdown, say) must not name it either, hence a
 * copy per run, made when it ends.
 */
function keepNewestSymbols(pid: number, target: string): void {
  const file = `/tmp/perf-${pid}.map`;
  if (!existsSync(file)) return;
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line): MapEntry => {
      const [start, size] = line.split(' ', 2).map((hex) => parseInt(hex, 16));
      return { start, end: start + size, line };
    });
  const kept: MapEntry[] = [];
  for (const entry of entries.reverse()) {
    const at = placeOf(kept, entry);
    if (at < kept.length && kept[at].start < entry.end) continue;
    kept.splice(at, 0, entry);
  }
  writeFileSync(target, `${kept.map((entry) => entry.line).join('\n')}\n`);
}
