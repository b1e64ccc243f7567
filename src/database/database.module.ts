import {
  Global,
  Logger,
  Module,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { reasonOf } from '@app/common/errors/reason-of';
import { isUnavailableError } from '@app/common/errors/to-error-body';
import { oneAtATime, withinTime } from '@app/common/time-limit';
import type { AllConfig } from '@app/config/app-config';
import { ReadinessChecks } from '@app/health/readiness-checks';
import { databaseProbe, type DatabaseProbe, ReadOnlyDatabase } from './database-ping';
import { closeConnectionsLeftWaiting } from './connections-left-waiting';
import { cannotOpen } from './database-errors';
import { pendingMigrations, runMigrations } from './prepare-database';
import { TransactionRunner } from './transaction-runner';
import { forMigrations, typeormOptions } from './typeorm-options';

const logger = new Logger('Database');
/** Start-up tries the database this many times more, a second apart, then stops saying why. */
const STARTUP_RETRIES = 4;
/** How long a readiness probe waits for the database. */
const PROBE_TIMEOUT_MS = 2_000;
const noAnswer = () => new Error('No answer in time');

/** A migration itself failed (not the connection): trying again a second later would not help. */
class MigrationFailed extends Error {}

/**
 * Applies pending migrations (on connections of their own, see
 * `forMigrations`), then connects before any module can query.
 */
async function createDataSource(options?: DataSourceOptions): Promise<DataSource> {
  if (!options) throw new Error('TypeORM options are missing');
  if (options.migrationsRun) await migrate(forMigrations(options));
  return open(options);
}

async function open(options: DataSourceOptions): Promise<DataSource> {
  const dataSource = await new DataSource({ ...options, migrationsRun: false })
    .initialize()
    .catch((error: unknown) => {
      throw cannotOpen(options, error);
    });
  closeConnectionsLeftWaiting(dataSource);
  return dataSource;
}

async function migrate(options: DataSourceOptions): Promise<void> {
  const dataSource = await open(options);
  try {
    const applied = await runMigrations(dataSource);
    for (const migration of applied) logger.log(`Applied migration ${migration.name}`);
  } catch (error) {
    // A connection lost or refused meanwhile (too many clients, a restart) is worth another
    // try; a statement cancelled (by an administrator) is not.
    if (isUnavailableError(error) && !isCancelled(error)) throw error;
    const reason = reasonOf(error);
    throw new MigrationFailed(`A migration failed: ${reason}`, { cause: error });
  } finally {
    await dataSource.destroy().catch(() => undefined);
  }
}

/** PostgreSQL's query_canceled. */
function isCancelled(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '57014';
}

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<AllConfig, true>) => ({
        ...typeormOptions(config.get('database', { infer: true })),
        // Nest counts the first try among its attempts.
        retryAttempts: STARTUP_RETRIES + 1,
        retryDelay: 1_000,
        toRetry: (error: unknown) => !(error instanceof MigrationFailed),
      }),
      dataSourceFactory: createDataSource,
    }),
  ],
  providers: [TransactionRunner],
  exports: [TransactionRunner],
})
export class DatabaseModule implements OnModuleInit, OnApplicationShutdown {
  /** Migrations never go away once applied: after the first clean check, no more queries. */
  private migrated = false;
  private readonly probe: DatabaseProbe;
  /** Probes that come while one waits share it: a database that does not answer holds one connection. */
  private readonly ping = oneAtATime(() => this.probe.ping());
  private readonly readPending = oneAtATime(() => pendingMigrations(this.dataSource));

  constructor(
    private readonly dataSource: DataSource,
    private readonly readiness: ReadinessChecks,
    private readonly indicators: HealthIndicatorService,
    transactions: TransactionRunner,
  ) {
    this.probe = databaseProbe(
      dataSource,
      PROBE_TIMEOUT_MS,
      () => transactions.sqliteRefusingWrites,
    );
  }

  /** Ready once the database answers and no migration is pending (MIGRATIONS_RUN=false and no one ran them). */
  onModuleInit(): void {
    this.readiness.register(() => this.checkAnswers());
    this.readiness.register(() => this.checkMigrated());
  }

  /** After the drain and the HTTP server: readiness answers until then. */
  async onApplicationShutdown(): Promise<void> {
    await this.probe.close();
  }

  private async checkAnswers(): Promise<HealthIndicatorResult> {
    const indicator = this.indicators.check('database');
    try {
      await this.ping();
      return indicator.up();
    } catch (error) {
      if (error instanceof ReadOnlyDatabase) return indicator.down({ message: error.message });
      // The driver's words may name hosts and users; readiness is public.
      return indicator.down({ message: 'The database did not answer' });
    }
  }

  private async checkMigrated(): Promise<HealthIndicatorResult> {
    const indicator = this.indicators.check('migrations');
    try {
      if (!this.migrated) {
        const pending = await withinTime(this.readPending(), PROBE_TIMEOUT_MS, noAnswer);
        this.migrated = pending.length === 0;
      }
    } catch {
      return indicator.down({ message: 'Could not read the applied migrations' });
    }
    return this.migrated
      ? indicator.up()
      : indicator.down({ message: 'Migrations are pending: run `npm run migration:run`' });
  }
}
