import { Global, Logger, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { AllConfig } from '@app/config/app-config';
import { runMigrations } from './prepare-database';
import { TransactionRunner } from './transaction-runner';
import { typeormOptions } from './typeorm-options';

const logger = new Logger('Database');

/** Connects, then applies pending migrations before any module can query. */
async function createDataSource(options?: DataSourceOptions): Promise<DataSource> {
  if (!options) throw new Error('TypeORM options are missing');
  const dataSource = await new DataSource({ ...options, migrationsRun: false }).initialize();
  if (options.migrationsRun) {
    const applied = await runMigrations(dataSource);
    for (const migration of applied) logger.log(`Applied migration ${migration.name}`);
  }
  return dataSource;
}

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<AllConfig, true>) =>
        typeormOptions(config.get('database', { infer: true })),
      dataSourceFactory: createDataSource,
    }),
  ],
  providers: [TransactionRunner],
  exports: [TransactionRunner],
})
export class DatabaseModule {}
