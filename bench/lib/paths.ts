import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

function findRepoRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'nest-cli.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`No repository root (nest-cli.json) above ${from}`);
    dir = parent;
  }
  return dir;
}

/** The compiled `bench/` directory (this file is `<it>/lib/paths.js`). */
export const BENCH_OUT = resolve(__dirname, '..');
export const REPO_ROOT = findRepoRoot(__dirname);
export const SERVICE_ENTRY = join(REPO_ROOT, 'dist', 'src', 'main.js');
export const MIGRATE_ENTRY = join(REPO_ROOT, 'dist', 'src', 'database', 'migrate.js');
export const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
/**
 * Where the service and its migrations run: an empty directory, so that no
 * `.env` of the checkout reaches the measured service (the baselines read
 * none), and its chat page from the build all the same.
 */
export const SERVICE_CWD = join(BENCH_OUT, 'service-cwd');
export const WEB_ROOT = join(REPO_ROOT, 'dist', 'web');

export const scripts = {
  socketioBaseline: join(BENCH_OUT, 'baselines', 'socketio-baseline.js'),
  storedBaseline: join(BENCH_OUT, 'baselines', 'socketio-stored-baseline.js'),
  wsBaseline: join(BENCH_OUT, 'baselines', 'ws-baseline.js'),
  socketioLoad: join(BENCH_OUT, 'load', 'socketio-load.js'),
  wsLoad: join(BENCH_OUT, 'load', 'ws-load.js'),
} as const;
