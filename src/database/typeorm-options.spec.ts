import { Client } from 'pg';
import { postgresConnection } from './typeorm-options';

/** What pg itself reads from a connection string. */
const asPgReadsIt = (connectionString: string) => {
  const client = new Client({ connectionString });
  const { options } = (client as unknown as { connectionParameters: { options?: string } })
    .connectionParameters;
  return { host: client.host, user: client.user, database: client.database, options };
};

const DURABLE = '-c synchronous_commit=on';
const OURS =
  '-c default_transaction_isolation=read\\ committed ' +
  '-c idle_in_transaction_session_timeout=60000 -c client_connection_check_interval=1000 ' +
  '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 -c search_path=tenant ' +
  DURABLE;

describe('postgresConnection', () => {
  it('leaves a URL without options as it is, also one only pg reads', () => {
    for (const url of [
      'postgres://u:p%40ss@db:5432/app?sslmode=require',
      'postgres://user@/app?host=/var/run/postgresql',
    ])
      expect(postgresConnection(url, 'tenant')).toEqual({ url, options: OURS });
  });

  it.each([
    [
      'keeps a stronger synchronous_commit of the URL',
      '-c synchronous_commit=remote_apply',
      'remote_apply',
    ],
    ['keeps a durable one that waits for no standby', '-c synchronous_commit=local', 'local'],
    ['makes one that is not durable durable', '-c synchronous_commit=off', 'on'],
    [
      'follows the last of several, as PostgreSQL does',
      '-c synchronous_commit=on -c synchronous_commit=off',
      'on',
    ],
    [
      'reads every form PostgreSQL takes',
      '--synchronous-commit=off -cSYNCHRONOUS_COMMIT=remote_apply',
      'remote_apply',
    ],
    [
      'reads a later off in any form',
      '-c synchronous_commit=remote_apply --synchronous-commit=off',
      'on',
    ],
    [
      'takes no setting from an escaped value',
      '-c application_name=x\\ -csynchronous_commit=local',
      'on',
    ],
  ])('%s', (_, given, kept) => {
    const url = `postgres://db/app?options=${encodeURIComponent(given)}`;
    const { options } = postgresConnection(url, undefined);
    const settings = [...options.matchAll(/-c synchronous_commit=(\w+)/g)].map((match) => match[1]);
    // The later of repeated settings wins.
    expect(settings.at(-1)).toBe(kept);
  });

  it('puts the URL’s options first and ours after them, keeping everything else', () => {
    const url =
      'postgres://user@/app?host=/var/run/postgresql&options=-c%20statement_timeout%3D5000';
    const connection = postgresConnection(url, 'tenant');
    expect(connection.options).toBe(`-c statement_timeout=5000 ${OURS}`);
    expect(asPgReadsIt(connection.url)).toMatchObject({
      host: '/var/run/postgresql',
      user: 'user',
      database: 'app',
    });
    expect(asPgReadsIt(connection.url).options).toBeUndefined();
  });

  it('takes the last of repeated options, as pg does', () => {
    const connection = postgresConnection(
      'postgres://db/app?options=-c%20a%3D1&options=-c%20b%3D2',
      undefined,
    );
    expect(connection.options.startsWith('-c b=2 ')).toBe(true);
    expect(connection.url).toBe('postgres://db/app');
  });
});
