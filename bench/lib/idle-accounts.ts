import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { usernameKey } from '../../src/contract/usernames';
import { signToken, type TokenUser } from '../common/tokens';
import { baselineToken } from './baseline-tokens';
import { benchUsername } from './service-api';

/** A password hash no password matches: these accounts are only ever used with the bench's tokens. */
const NO_PASSWORD = '-';

function idleUsers(count: number): TokenUser[] {
  return Array.from({ length: count }, (_, index) => ({
    id: randomUUID(),
    username: benchUsername(`idle${index}`),
  }));
}

/** A user of its own for each of `count` connections to a bare server: their tokens. */
export function baselineIdleTokens(count: number): string[] {
  return idleUsers(count).map(baselineToken);
}

/**
 * A user of its own for each of `count` connections to the service: accounts
 * written straight into its migrated SQLite database, and tokens signed with
 * its secret. Registering them through the API would hash a password for
 * each, at production's bcrypt cost: minutes for 10 000.
 */
export function serviceIdleTokens(sqlitePath: string, jwtSecret: string, count: number): string[] {
  const users = idleUsers(count);
  const db = new Database(sqlitePath);
  try {
    const insert = db.prepare(
      'INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    const createdAt = new Date().toISOString();
    db.transaction(() => {
      for (const user of users)
        insert.run(user.id, user.username, usernameKey(user.username), NO_PASSWORD, createdAt);
    })();
  } finally {
    db.close();
  }
  return users.map((user) => signToken(jwtSecret, user));
}
