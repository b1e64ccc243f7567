import { InitialSchema1764028800000 } from './1764028800000-InitialSchema';

/** Every migration, oldest first. A new migration file is added here too. */
export const MIGRATIONS = [InitialSchema1764028800000];
