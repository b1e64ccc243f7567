import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runsUnderCi } from './ci';
import { freePort } from './free-port';

const NGINX_CONF = join(__dirname, '..', '..', 'deploy', 'nginx.conf');

/** Without nginx the suite may skip locally, never under CI. */
export function nginxAvailable(): boolean {
  if (spawnSync('nginx', ['-v']).status === 0) return true;
  const message = 'nginx is missing: install it with "apt-get install -y nginx-light"';
  if (runsUnderCi()) throw new Error(`${message} (required under CI)`);
  console.warn(`${message}; skipping the proxy test.`);
  return false;
}

/**
 * deploy/nginx.conf as it runs outside compose: its own files in `dir`, on
 * `port`, with `upstream` (host:port, or unix:path) instead of the replicas that
 * Docker's DNS resolves (`resolve` needs nginx 1.27.3, the image's).
 * Everything else is the file as deployed.
 */
function localConfig(
  dir: string,
  port: number,
  upstream: string,
  { balancer }: NginxOptions,
): string {
  const replacements: Array<[RegExp, string]> = [
    [/^user .*;$/m, ''],
    [/^pid .*;$/m, `pid ${dir}/nginx.pid;`],
    [/^error_log .*;$/m, `error_log ${dir}/error.log crit;`],
    [/access_log \S+ chat;/, `access_log ${dir}/access.log chat;`],
    [/^\s*resolver(_timeout)? .*;$/gm, ''],
    [/server app:3000 resolve /, `server ${upstream} `],
    [/listen 80 default_server;/, `listen 127.0.0.1:${port} default_server;`],
    [
      /^http \{$/m,
      `http {\n    client_body_temp_path ${dir}/body;\n    proxy_temp_path ${dir}/proxy;`,
    ],
    ...balancerLines(balancer),
  ];
  let conf = readFileSync(NGINX_CONF, 'utf8');
  for (const [pattern, replacement] of replacements) {
    if (!pattern.test(conf)) throw new Error(`deploy/nginx.conf no longer matches ${pattern}`);
    conf = conf.replace(pattern, replacement);
  }
  return conf;
}

/** The lines the file ships commented out for a balancer in front, taken in with its range. */
function balancerLines(balancer: string | undefined): Array<[RegExp, string]> {
  if (balancer === undefined) return [];
  return [
    [/^(\s*)# set_real_ip_from \S+;$/m, `$1set_real_ip_from ${balancer};`],
    [/^(\s*)# (real_ip_header X-Forwarded-For;)$/m, '$1$2'],
    [/^(\s*)# (real_ip_recursive on;)$/m, '$1$2'],
  ];
}

export interface NginxOptions {
  /** The range of a load balancer in front, as the file's commented set_real_ip_from would name it. */
  balancer?: string;
}

export interface RunningNginx {
  url: string;
  stop(): Promise<void>;
}

/**
 * nginx with deploy/nginx.conf in front of the service on `upstreamPort`, or
 * of no replica at all (a socket file nobody listens on), in the foreground.
 * Its port is picked free, which another process may take first: then it
 * starts again on another.
 */
export async function startNginx(
  upstreamPort?: number,
  options: NginxOptions = {},
): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'));
  const upstream =
    upstreamPort === undefined ? `unix:${join(dir, 'nobody.sock')}` : `127.0.0.1:${upstreamPort}`;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOnce(dir, await freePort(), upstream, options);
    } catch (error) {
      if (attempt === 3) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
}

async function startOnce(
  dir: string,
  port: number,
  upstream: string,
  options: NginxOptions,
): Promise<RunningNginx> {
  const confPath = join(dir, 'nginx.conf');
  writeFileSync(confPath, localConfig(dir, port, upstream, options));
  const args = ['-p', dir, '-e', join(dir, 'error.log'), '-c', confPath];
  const check = spawnSync('nginx', [...args, '-t'], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx refuses deploy/nginx.conf:\n${check.stderr}`);
  const child: ChildProcess = spawn('nginx', [...args, '-g', 'daemon off;'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForListening(url, exited);
  } catch (error) {
    // Not left running beside the next try, which uses the same directory.
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGQUIT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Until nginx answers on its port; an nginx that exited (its port was taken) fails it. */
async function waitForListening(url: string, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (gone) throw new Error('nginx exited at start');
    try {
      const response = await fetch(`${url}/health/live`);
      // Another process may hold the port: only nginx's answer counts.
      if (response.headers.get('server') === 'nginx') return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('nginx did not start listening');
}
