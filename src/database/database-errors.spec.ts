import type { DataSourceOptions } from 'typeorm';
import { cannotOpen } from './database-errors';

const postgres = { type: 'postgres', url: 'postgres://u:secret@db/app' } as DataSourceOptions;

describe('cannotOpen', () => {
  it('names the setting to look at, never the URL with its password', () => {
    const error = cannotOpen(postgres, new Error('password authentication failed'));
    expect(error.message).toBe(
      'Cannot open the database at DATABASE_URL: password authentication failed',
    );
  });

  it('says which server it needs when an older one refuses a session setting', () => {
    const refused = new Error(
      'unrecognized configuration parameter "client_connection_check_interval"',
    );
    expect(cannotOpen(postgres, refused).message).toContain('PostgreSQL 14 or later');
  });
});
