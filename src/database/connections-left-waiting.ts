import type { Pool, PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';

/** pg keeps the statement a connection has sent and awaits the answer of here; its types do not say so. */
interface ClientInternals {
  _activeQuery?: unknown;
}

function awaitsAnswer(client: PoolClient): boolean {
  return (client as unknown as ClientInternals)._activeQuery != null;
}

/**
 * A pooled PostgreSQL connection handed back while a statement it sent still
 * awaits its answer is closed rather than lent again. pg gives up on such a
 * statement after its `query_timeout`, and TypeORM then hands the connection
 * back as if it were sound: each query lent it next would queue behind the
 * unanswered one and fail in turn, until TCP gave up (minutes), and a few
 * silent connections would fail most queries of the node.
 *
 * The pool tells of a release before it decides where the connection goes,
 * and drops one that is ending.
 */
export function closeConnectionsLeftWaiting(dataSource: DataSource): void {
  if (dataSource.options.type !== 'postgres') return;
  const pool = (dataSource.driver as PostgresDriver).master as Pool;
  pool.on('release', (error, client) => {
    if (!error && awaitsAnswer(client)) client.end().catch(() => undefined);
  });
}
