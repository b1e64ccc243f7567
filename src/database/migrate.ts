import 'reflect-metadata';
import { exitOnSignals } from '@app/common/exit-on-signals';
import { cannotOpen } from './database-errors';
import { migrationDataSource } from './migration-data-source';
import { revertLastMigration, runMigrations } from './prepare-database';

/** `node dist/src/database/migrate.js run|revert`: the migration step of deployments. */
async function main(command: string | undefined): Promise<void> {
  if (command !== 'run' && command !== 'revert') {
    throw new Error('Usage: migrate.js run|revert');
  }
  const dataSource = migrationDataSource();
  await dataSource.initialize().catch((error: unknown) => {
    throw cannotOpen(dataSource.options, error);
  });
  try {
    if (command === 'run') {
      const applied = await runMigrations(dataSource);
      console.log(
        applied.length === 0
          ? 'No pending migrations'
          : `Applied: ${applied.map((migration) => migration.name).join(', ')}`,
      );
    } else {
      const reverted = await revertLastMigration(dataSource);
      console.log(reverted ? `Reverted: ${reverted}` : 'Nothing to revert');
    }
  } finally {
    await dataSource.destroy();
  }
}

// Ended halfway, a migration leaves nothing the next run cannot finish: each runs in a
// transaction, or is written to be run again.
exitOnSignals('while migrating');
main(process.argv[2]).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
