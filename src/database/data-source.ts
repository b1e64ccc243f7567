import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from '@app/config/app-config';
import { typeormOptions } from './typeorm-options';

/** The data source the TypeORM CLI and the migration script read. */
export default new DataSource({
  ...typeormOptions(loadConfig().database),
  migrationsRun: false,
});
