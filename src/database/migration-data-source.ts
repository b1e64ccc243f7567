import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from '@app/config/app-config';
import { serviceEnvironment } from '@app/config/service-environment';
import { forMigrations, typeormOptions } from './typeorm-options';

/** A data source for migrating, on the settings the service reads (a bad one throws, naming it). */
export function migrationDataSource(): DataSource {
  return new DataSource({
    ...forMigrations(typeormOptions(loadConfig(serviceEnvironment()).database)),
    migrationsRun: false,
  });
}
