/**
 * Guards the deployment files (Dockerfile, docker-compose.yml,
 * deploy/nginx.conf) against silent rot. Nothing here needs a Docker engine:
 * the files are parsed and their structure asserted; when a `docker` client
 * with the compose plugin is on PATH, `docker compose config -q` validates
 * the compose file too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { MAX_TIMER_MS } from '@app/config/env.validation';

const ROOT = join(__dirname, '..', '..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const DOCKERFILE = join(ROOT, 'Dockerfile');
const DOCKERIGNORE = join(ROOT, '.dockerignore');
const NGINX_CONF = join(ROOT, 'deploy', 'nginx.conf');
const PACKAGE_JSON = join(ROOT, 'package.json');

interface PackageJson {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
}

type Mapping = Record<string, unknown>;

interface ComposeService extends Mapping {
  image?: string;
  build?: string | Mapping;
  command?: string | string[];
  environment?: Mapping | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean } & Mapping;
  deploy?: { replicas?: number } & Mapping;
  ports?: unknown[];
  volumes?: unknown[];
  restart?: string;
  stop_grace_period?: string;
  init?: boolean;
}

interface ComposeFile extends Mapping {
  services: Record<string, ComposeService>;
  volumes?: Mapping;
}

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function loadCompose(): ComposeFile {
  // `merge: true` resolves the `<<: *anchor` merge keys as Compose does.
  const parsed: unknown = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true });
  if (!isMapping(parsed) || !isMapping(parsed.services)) {
    throw new Error('docker-compose.yml has no `services` mapping');
  }
  return parsed as ComposeFile;
}

function service(compose: ComposeFile, name: string): ComposeService {
  const found = compose.services[name];
  if (!isMapping(found)) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

/** A YAML scalar as Compose reads it (`null` means "from the shell", here ''). */
function scalarText(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : '';
}

/** The environment as a map, whichever of the two Compose syntaxes is used. */
function environmentOf(svc: ComposeService): Record<string, string> {
  const env = svc.environment ?? {};
  const entries: [string, string][] = Array.isArray(env)
    ? env.map((line): [string, string] => {
        const text = String(line);
        const eq = text.indexOf('=');
        return eq === -1 ? [text, ''] : [text.slice(0, eq), text.slice(eq + 1)];
      })
    : Object.entries(env).map(([key, value]): [string, string] => [key, scalarText(value)]);
  return Object.fromEntries(entries);
}

/** depends_on as `{ service: condition }` (the short list form means service_started). */
function dependenciesOf(svc: ComposeService): Record<string, string> {
  const deps = svc.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, 'service_started']));
  return Object.fromEntries(
    Object.entries(deps).map(([name, spec]) => [name, spec?.condition ?? 'service_started']),
  );
}

function commandText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(' ') : (value ?? '');
}

function buildDockerfile(svc: ComposeService): string | undefined {
  if (svc.build === undefined) return undefined;
  if (typeof svc.build === 'string') return 'Dockerfile';
  const dockerfile = svc.build.dockerfile;
  return typeof dockerfile === 'string' ? dockerfile : 'Dockerfile';
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function dockerInstructions(text: string): string[] {
  const instructions: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (current !== '' && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') instructions.push(current.trim());
    current = '';
  }
  if (current.trim() !== '') instructions.push(current.trim());
  return instructions;
}

/** Splits instructions into stages, each starting with its FROM. */
function dockerStages(instructions: string[]): string[][] {
  const stages: string[][] = [];
  for (const instruction of instructions) {
    if (/^FROM\s/i.test(instruction)) stages.push([instruction]);
    else if (stages.length > 0) stages[stages.length - 1].push(instruction);
  }
  return stages;
}

const NGINX_TIME_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** A time directive of a block, in ms (nginx's default unit is seconds). */
function nginxDurationMs(block: string, directive: string): number {
  const match = new RegExp(`^\\s*${directive}\\s+(\\d+)(ms|s|m|h)?\\s*;`, 'm').exec(block);
  if (!match) throw new Error(`no ${directive} in the block`);
  return Number(match[1]) * NGINX_TIME_UNITS_MS[match[2] ?? 's'];
}

/**
 * The body of the first nginx block whose header matches, braces counted
 * outside quoted strings and comments (the config returns JSON bodies).
 */
function nginxBlock(conf: string, header: RegExp): string {
  const match = header.exec(conf);
  if (!match) throw new Error(`deploy/nginx.conf has no block matching ${header}`);
  const open = conf.indexOf('{', match.index + match[0].length - 1);
  let depth = 0;
  let quote: string | null = null;
  let comment = false;
  for (let i = open; i < conf.length; i++) {
    const ch = conf[i];
    if (comment) {
      if (ch === '\n') comment = false;
    } else if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '#') {
      comment = true;
    } else if (ch === '{') {
      depth++;
    } else if (ch === '}') {
      depth--;
      if (depth === 0) return conf.slice(open + 1, i);
    }
  }
  throw new Error(`Unbalanced braces after ${header} in deploy/nginx.conf`);
}

function withoutComments(conf: string): string {
  return conf
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, ''))
    .join('\n');
}

/** A value that Compose takes from the environment, never a literal. */
const FROM_ENVIRONMENT = /^\$\{JWT_SECRET(?::?[?-][^}]*)?\}$/;

/** Why `docker compose config` cannot run here, said once; undefined where it can. */
function composePluginMissing(): string | undefined {
  const probe = spawnSync('docker', ['compose', 'version'], { cwd: ROOT, encoding: 'utf8' });
  const reason = probe.error
    ? `docker is not on PATH (${probe.error.message})`
    : probe.status !== 0
      ? `the compose plugin is missing (docker said: ${`${probe.stderr}${probe.stdout}`.trim().split('\n')[0]})`
      : undefined;
  if (reason) console.warn(`Skipping \`docker compose config\`: ${reason}`);
  return reason;
}

describe('deployment files', () => {
  it('exist', () => {
    for (const file of [COMPOSE_FILE, DOCKERFILE, DOCKERIGNORE, NGINX_CONF]) {
      expect(existsSync(file)).toBe(true);
    }
  });

  describe('docker-compose.yml', () => {
    const compose = loadCompose();
    const services = compose.services;

    it('follows the Compose specification (no `version:` key) and declares the five services', () => {
      expect(compose).not.toHaveProperty('version');
      expect(Object.keys(services)).toEqual(
        expect.arrayContaining(['postgres', 'redis', 'migrate', 'app', 'proxy']),
      );
    });

    it('runs PostgreSQL 16 with a pg_isready healthcheck and a named volume', () => {
      const postgres = service(compose, 'postgres');
      expect(postgres.image).toMatch(/^postgres:16(\b|-|\.)/);
      expect(commandText(postgres.healthcheck?.test)).toContain('pg_isready');
      const volumes = (postgres.volumes ?? []).map(String);
      const dataVolume = volumes.find((volume) => volume.endsWith(':/var/lib/postgresql/data'));
      expect(dataVolume).toBeDefined();
      const volumeName = String(dataVolume).split(':')[0];
      // A named volume (declared at the top level), not a bind mount.
      expect(volumeName).not.toMatch(/^[./~]/);
      expect(compose.volumes ?? {}).toHaveProperty(volumeName);
    });

    it('runs Redis 7 with a redis-cli ping healthcheck', () => {
      const redis = service(compose, 'redis');
      expect(redis.image).toMatch(/^redis:7(\b|-|\.)/);
      expect(commandText(redis.healthcheck?.test)).toMatch(/redis-cli\s+ping/);
    });

    it('migrates once, from the app image, after PostgreSQL is healthy', () => {
      const migrate = service(compose, 'migrate');
      expect(migrate.command).toEqual(['node', 'dist/src/database/migrate.js', 'run']);
      expect(dependenciesOf(migrate)).toMatchObject({ postgres: 'service_healthy' });
      expect(String(migrate.restart)).toBe('no');
      expect(buildDockerfile(migrate) ?? migrate.image).toBeDefined();
    });

    it('builds the app from the Dockerfile (or shares the migrate image)', () => {
      const app = service(compose, 'app');
      const migrate = service(compose, 'migrate');
      const dockerfile = buildDockerfile(app);
      if (dockerfile !== undefined) {
        expect(dockerfile).toBe('Dockerfile');
      } else {
        expect(app.image).toBeDefined();
        expect(app.image).toBe(migrate.image);
      }
      if (app.image !== undefined && migrate.image !== undefined) {
        expect(app.image).toBe(migrate.image);
      }
    });

    it('runs at least two app replicas that never migrate on their own', () => {
      const app = service(compose, 'app');
      expect(app.deploy?.replicas).toBeGreaterThanOrEqual(2);
      const env = environmentOf(app);
      expect(env.MIGRATIONS_RUN).toBe('false');
      expect(env.NODE_ENV).toBe('production');
      // One hop, nginx: trusting every hop would let clients pick their address.
      expect(env.TRUST_PROXY).toBe('1');
    });

    it('takes JWT_SECRET from the environment, never from a literal', () => {
      for (const name of ['app', 'migrate']) {
        const env = environmentOf(service(compose, name));
        expect(env.JWT_SECRET).toMatch(FROM_ENVIRONMENT);
      }
      // Required, with a message: `${JWT_SECRET:?...}`.
      expect(environmentOf(service(compose, 'app')).JWT_SECRET).toMatch(/^\$\{JWT_SECRET:?\?.+\}$/);
    });

    it('points DATABASE_URL and REDIS_URL at the postgres and redis services', () => {
      for (const name of ['app', 'migrate']) {
        const env = environmentOf(service(compose, name));
        expect(env.DATABASE_URL).toMatch(/^postgres(ql)?:\/\/[^@/]*@postgres(:5432)?\//);
        if (name === 'app')
          expect(env.REDIS_URL).toMatch(/^rediss?:\/\/([^@/]*@)?redis(:6379)?\/?$/);
      }
    });

    it('checks app readiness on /health/ready and starts it after migrations and its dependencies', () => {
      const app = service(compose, 'app');
      const healthcheck = commandText(app.healthcheck?.test);
      expect(healthcheck).toContain('/health/ready');
      // Slim images have no curl or wget: Node does the request.
      expect(healthcheck).toMatch(/\bnode\b/);
      expect(dependenciesOf(app)).toMatchObject({
        migrate: 'service_completed_successfully',
        postgres: 'service_healthy',
        redis: 'service_healthy',
      });
    });

    it('runs the app and the migration step under an init, so that signals reach Node', () => {
      for (const name of ['app', 'migrate']) expect(service(compose, name).init).toBe(true);
    });

    it('gives the app longer to drain than its own shutdown timeout, both settings by default', () => {
      const app = service(compose, 'app');
      const grace = /^\$\{STOP_GRACE_PERIOD:-(\d+)s\}$/.exec(String(app.stop_grace_period));
      expect(grace).not.toBeNull();
      const shutdown = /(\d+)\}?$/.exec(environmentOf(app).SHUTDOWN_TIMEOUT_MS ?? '10000');
      const shutdownMs = Number(shutdown?.[1] ?? 10_000);
      expect(Number(grace?.[1]) * 1000).toBeGreaterThan(shutdownMs);
    });

    it('publishes a port only on the proxy, which mounts deploy/nginx.conf', () => {
      const proxy = service(compose, 'proxy');
      expect(proxy.image).toMatch(/^nginx:/);
      expect(proxy.ports?.length ?? 0).toBeGreaterThan(0);
      expect(proxy.ports?.map(String)).toEqual(
        expect.arrayContaining([expect.stringMatching(/:80$/)]),
      );
      const volumes = (proxy.volumes ?? []).map(String);
      expect(volumes).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^\.\/deploy\/nginx\.conf:\/etc\/nginx\/nginx\.conf(:ro)?$/),
        ]),
      );
      expect(dependenciesOf(proxy)).toMatchObject({ app: 'service_healthy' });

      const publishing = Object.entries(services)
        .filter(([, svc]) => Array.isArray(svc.ports) && svc.ports.length > 0)
        .map(([name]) => name);
      expect(publishing).toEqual(['proxy']);
    });

    // Counted as skipped, not passed, where the client or its compose plugin is missing.
    const itWithCompose = composePluginMissing() ? it.skip : it;
    itWithCompose('is accepted by `docker compose config`', () => {
      const env: NodeJS.ProcessEnv = { ...process.env, JWT_SECRET: 'x'.repeat(48) };
      const valid = spawnSync('docker', ['compose', '-f', 'docker-compose.yml', 'config', '-q'], {
        cwd: ROOT,
        env,
        encoding: 'utf8',
      });
      // stderr is part of the compared object so that a failure shows what Compose said.
      expect({ status: valid.status, stderr: valid.stderr }).toMatchObject({ status: 0 });

      // Without JWT_SECRET the file refuses to render, naming the variable.
      const withoutSecret: NodeJS.ProcessEnv = { ...process.env };
      delete withoutSecret.JWT_SECRET;
      const refused = spawnSync('docker', ['compose', '-f', 'docker-compose.yml', 'config', '-q'], {
        cwd: ROOT,
        env: withoutSecret,
        encoding: 'utf8',
      });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('JWT_SECRET');
    });
  });

  describe('Dockerfile', () => {
    const text = readFileSync(DOCKERFILE, 'utf8');
    const instructions = dockerInstructions(text);
    const stages = dockerStages(instructions);
    const build = stages[0] ?? [];
    const runtime = stages[stages.length - 1] ?? [];

    it('is multi-stage: a build stage and a slim Node 20 runtime', () => {
      expect(stages.length).toBeGreaterThanOrEqual(2);
      const args = Object.fromEntries(
        instructions
          .filter((line) => /^ARG\s+\w+=/i.test(line))
          .map((line) => line.replace(/^ARG\s+/i, '').split('=') as [string, string]),
      );
      const runtimeImage = runtime[0].replace(/^FROM\s+(--\S+\s+)*/i, '').split(/\s+/)[0];
      const resolved = runtimeImage.replace(
        /^\$\{?(\w+)\}?$/,
        (_, name: string) => args[name] ?? name,
      );
      expect(resolved).toMatch(/^node:20[-.\w]*slim/);
    });

    it('builds with the npm scripts the tests use, then prunes dev dependencies', () => {
      const runs = build.filter((line) => /^RUN\s/i.test(line)).join('\n');
      expect(runs).toMatch(/\bnpm ci\b/);
      expect(runs).toMatch(/\bnpm run build\b/);
      expect(runs).toMatch(/\bnpm prune\b.*--omit=dev/);
      expect(runs).toMatch(/python3/);
      expect(runs.indexOf('npm ci')).toBeLessThan(runs.indexOf('npm run build'));
    });

    it('copies the dependency patches before `npm ci`, which applies them', () => {
      const patches = build.findIndex((line) => /^COPY\s+patches\s/i.test(line));
      const install = build.findIndex((line) => /^RUN\s.*\bnpm ci\b/i.test(line));
      expect(patches).toBeGreaterThanOrEqual(0);
      expect(patches).toBeLessThan(install);
      const manifest = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as PackageJson;
      // Outside CI, patch-package would otherwise report a patch that no longer applies and exit 0.
      expect(manifest.scripts.postinstall).toBe('patch-package --error-on-fail');
      // A production install (`npm ci --omit=dev`) runs postinstall too.
      expect(manifest.dependencies).toHaveProperty('patch-package');
    });

    it('copies into the build stage every folder `npm run build` reads', () => {
      const copied = build
        .filter((line) => /^COPY\s/i.test(line) && !/--from/i.test(line))
        .flatMap((line) =>
          line
            .replace(/^COPY\s+/i, '')
            .split(/\s+/)
            .slice(0, -1),
        );
      for (const folder of [
        'src',
        'migrations',
        'client',
        'web',
        'nest-cli.json',
        'tsconfig.build.json',
      ]) {
        expect(copied).toContain(folder);
      }
    });

    it('runs the final stage as the non-root node user', () => {
      const users = runtime.filter((line) => /^USER\s/i.test(line));
      expect(users.length).toBeGreaterThan(0);
      expect(users[users.length - 1]).toMatch(/^USER\s+node\s*$/i);
      expect(runtime.some((line) => /^ENV\s.*NODE_ENV=production/i.test(line))).toBe(true);
      expect(runtime.some((line) => /^EXPOSE\s+3000\b/i.test(line))).toBe(true);
    });

    it('keeps the embedded database in a volume owned by the node user', () => {
      const volume = runtime.findIndex((line) => /^VOLUME\s+\/app\/data\s*$/i.test(line));
      const owned = runtime.findIndex((line) => /^RUN\s.*chown node:node \/app\/data/i.test(line));
      expect(owned).toBeGreaterThanOrEqual(0);
      // Docker copies the folder's owner into a fresh volume only if it was set before.
      expect(volume).toBeGreaterThan(owned);
    });

    it('copies only package.json, node_modules and dist into the runtime stage', () => {
      const copies = runtime.filter((line) => /^(COPY|ADD)\s/i.test(line));
      expect(copies.length).toBeGreaterThan(0);
      for (const copy of copies) {
        expect(copy).toMatch(/--from=build\b/);
        const sources = copy
          .replace(/^(COPY|ADD)\s+/i, '')
          .split(/\s+/)
          .filter((word) => !word.startsWith('--'))
          .slice(0, -1);
        for (const source of sources) {
          expect(source).toMatch(/^\/app\/(package\.json|node_modules|dist)\/?$/);
        }
      }
    });

    it('checks liveness with node and starts dist/src/main.js', () => {
      const healthcheck = runtime.find((line) => /^HEALTHCHECK\s/i.test(line));
      expect(healthcheck).toBeDefined();
      // The probe reads HOST and PORT as the service does (test/process/liveness-probe).
      expect(healthcheck).toMatch(
        /CMD\s+\[\s*"node",\s*"dist\/src\/health\/liveness-probe\.js"\s*\]/,
      );
      const cmd = runtime.filter((line) => /^CMD\s/i.test(line)).pop();
      expect(cmd).toBeDefined();
      expect(JSON.parse(String(cmd).replace(/^CMD\s+/i, ''))).toEqual(['node', 'dist/src/main.js']);
    });

    it('puts no secrets into the image', () => {
      for (const line of instructions) {
        if (/^(COPY|ADD)\s/i.test(line))
          expect(line).not.toMatch(/\.env\b|\.pem\b|\.key\b|\bsecrets?\b/i);
        if (/^(ENV|ARG)\s/i.test(line))
          expect(line).not.toMatch(/SECRET|PASSWORD|TOKEN|DATABASE_URL/i);
        // `COPY . .` would take whatever the context holds.
        expect(line).not.toMatch(/^(COPY|ADD)\s+(--\S+\s+)*\.\s/i);
      }
    });

    it('is paired with a .dockerignore that keeps secrets and local output out of the context', () => {
      const ignored = readFileSync(DOCKERIGNORE, 'utf8')
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'));
      expect(ignored).toEqual(
        expect.arrayContaining([
          'node_modules',
          'dist',
          'data',
          'coverage',
          'artifacts',
          '.git',
          '*.log',
        ]),
      );
      expect(ignored.some((line) => line === '.env*' || line === '.env.*')).toBe(true);
      expect(ignored).toContain('.env');
      // The build needs these, so they must not be ignored.
      for (const needed of [
        'package.json',
        'package-lock.json',
        'patches',
        'src',
        'migrations',
        'tsconfig.json',
      ]) {
        expect(ignored).not.toContain(needed);
      }
    });
  });

  describe('deploy/nginx.conf', () => {
    const conf = withoutComments(readFileSync(NGINX_CONF, 'utf8'));
    const http = nginxBlock(conf, /^\s*http\s*\{/m);
    const location = (header: RegExp) => nginxBlock(http, header);

    it('is a full nginx.conf with events and http blocks', () => {
      expect(conf).toMatch(/^\s*events\s*\{/m);
      expect(conf).toMatch(/^\s*http\s*\{/m);
    });

    it('balances over every app replica with client-address affinity', () => {
      const upstream = nginxBlock(http, /upstream\s+(\w+)\s*\{/);
      expect(upstream).toMatch(/^\s*server\s+app:3000\b/m);
      expect(upstream).toMatch(/^\s*(hash\s+\$remote_addr\s+consistent|ip_hash)\s*;/m);
      expect(http).toMatch(/resolver\s+127\.0\.0\.11\b/);
      expect(http).toMatch(/client_max_body_size\s+1m\s*;/);
    });

    it('upgrades WebSocket connections on /socket.io/ and /ws, with timeouts above the longest ping interval', () => {
      expect(http).toMatch(/map\s+\$http_upgrade\s+\$connection_upgrade\s*\{/);
      for (const header of [/location\s+\/socket\.io\/\s*\{/, /location\s+(=\s*)?\/ws\s*\{/]) {
        const block = location(header);
        expect(block).toMatch(/proxy_http_version\s+1\.1\s*;/);
        expect(block).toMatch(/proxy_set_header\s+Upgrade\s+\$http_upgrade\s*;/);
        expect(block).toMatch(/proxy_set_header\s+Connection\s+\$connection_upgrade\s*;/);
        // The server pings every WS_PING_INTERVAL_MS and the client answers at once: that is the
        // longest either direction stays quiet.
        for (const directive of ['proxy_read_timeout', 'proxy_send_timeout'])
          expect(nginxDurationMs(block, directive)).toBeGreaterThan(MAX_TIMER_MS);
      }
      // Long-polling uploads reach Engine.IO as they come, which stops reading at its own limit.
      expect(location(/location\s+\/socket\.io\/\s*\{/)).toMatch(
        /proxy_request_buffering\s+off\s*;/,
      );
    });

    /** The block nginx picks for a path: exact, then `^~` or longest prefix, then regexes in order. */
    const locationFor = (path: string): string => {
      const headers = [...http.matchAll(/location\s+(=|~\*|~|\^~)?\s*([^\s{@]+)\s*\{/g)];
      const blockAt = (index: number) => nginxBlock(http.slice(index), /location\s+[^{]+\{/);
      const exact = headers.find(([, modifier, uri]) => modifier === '=' && uri === path);
      if (exact) return blockAt(exact.index);
      const prefixes = headers
        .filter(([, modifier, uri]) => (!modifier || modifier === '^~') && path.startsWith(uri))
        .sort((a, b) => b[2].length - a[2].length);
      if (prefixes[0]?.[1] === '^~') return blockAt(prefixes[0].index);
      const regex = headers.find(
        ([, modifier, uri]) =>
          (modifier === '~' || modifier === '~*') &&
          new RegExp(uri, modifier === '~*' ? 'i' : '').test(path),
      );
      if (regex) return blockAt(regex.index);
      if (!prefixes[0]) throw new Error(`No location for ${path}`);
      return blockAt(prefixes[0].index);
    };

    it('streams Server-Sent Events unbuffered on every SSE route, the reference one included', () => {
      const room = '0190b0b0-0000-7000-8000-0000000000aa';
      for (const path of ['/api/events', `/events/${room}`, `/api/rooms/${room}/events`]) {
        const block = locationFor(path);
        expect(block).toMatch(/proxy_buffering\s+off\s*;/);
        expect(block).toMatch(/proxy_cache\s+off\s*;/);
        expect(block).toMatch(/proxy_http_version\s+1\.1\s*;/);
        expect(block).toMatch(/proxy_set_header\s+Connection\s+""\s*;/);
        expect(block).toMatch(/proxy_read_timeout\s+(1h|\d{4,}s)\s*;/);
      }
      expect(locationFor(`/api/rooms/${room}/messages`)).not.toMatch(/proxy_buffering\s+off/);
    });

    it('keeps metrics private on every path the app answers them on', () => {
      for (const path of ['/metrics', '/metrics/', '/METRICS', '/Metrics/']) {
        const block = locationFor(path);
        expect(block).toMatch(/deny\s+all\s*;/);
        // Behind a load balancer or Docker's port publishing, anyone may come from a private range.
        expect([...block.matchAll(/allow\s+([^;\s]+)\s*;/g)].map((m) => m[1])).toEqual([
          '127.0.0.0/8',
        ]);
        expect(block).toMatch(/proxy_pass\s+http:\/\/app\b/);
      }
      expect(locationFor('/api/rooms')).not.toMatch(/deny\s+all/);
    });

    it('forwards client address, scheme and request id on every proxied location', () => {
      const blocks = [...http.matchAll(/location\s+[^{@]+\{/g)].map((match) =>
        nginxBlock(http.slice(match.index), /location\s+[^{]+\{/),
      );
      const proxied = blocks.filter((block) => /proxy_pass\s+http:\/\/app\b/.test(block));
      expect(proxied.length).toBeGreaterThanOrEqual(5);
      for (const block of proxied) {
        expect(block).toMatch(/proxy_set_header\s+X-Forwarded-For\s+\$\w+\s*;/);
        expect(block).toMatch(/proxy_set_header\s+X-Forwarded-Proto\s+\$scheme\s*;/);
        expect(block).toMatch(/proxy_set_header\s+X-Request-Id\s+\$\w+\s*;/);
      }
    });

    it('never writes query strings (they carry ?token=) into the access log', () => {
      const formats = [...http.matchAll(/log_format\s+\w+([^;]*);/g)].map((match) => match[1]);
      expect(formats.length).toBeGreaterThan(0);
      for (const format of formats) {
        expect(format).not.toMatch(/\$(request|request_uri|args|query_string|arg_\w+)\b/);
      }
      expect(http).toMatch(/access_log\s+\S+\s+\w+\s*;/);
    });

    it('keeps error-log lines, which quote the request line and its ?token=, out', () => {
      const levels = [...conf.matchAll(/error_log\s+\S+\s+(\w+)\s*;/g)].map((match) => match[1]);
      expect(levels.length).toBeGreaterThan(0);
      for (const level of levels) expect(['crit', 'alert', 'emerg']).toContain(level);
    });

    it('drops idle upstream connections before the app does (its keep-alive is 5 s)', () => {
      const upstream = nginxBlock(http, /upstream\s+(\w+)\s*\{/);
      const timeout = /keepalive_timeout\s+(\d+)s\s*;/.exec(upstream);
      expect(Number(timeout?.[1])).toBeLessThan(5);
    });
  });
});
