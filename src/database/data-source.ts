import { migrationDataSource } from './migration-data-source';

/** The data source the TypeORM CLI reads. */
export default migrationDataSource();
