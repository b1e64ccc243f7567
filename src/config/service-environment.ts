import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'dotenv';
import type { RawEnvironment } from './env.validation';

const ENV_FILE = '.env';

/**
 * The service's settings: the process environment over a `.env` file in the
 * working directory. Read once and handed to everything that configures the
 * service (the HTTP server and Socket.IO adapter built before Nest's modules,
 * ConfigService, the migration script), so that all of them see one set.
 */
export function serviceEnvironment(cwd = process.cwd()): RawEnvironment {
  const file = join(cwd, ENV_FILE);
  const fromFile = existsSync(file) ? parse(readFileSync(file)) : {};
  return { ...fromFile, ...process.env };
}
