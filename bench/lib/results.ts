import type { IdleResult } from '../phases/idle';
import type { ClusterResult } from '../phases/rooms';
import type { LoadMeasurement } from './measure';

export type Database = 'sqlite' | 'postgres';

/** Everything one run measured; the table and the JSON file are made from it. */
export interface Results {
  idle: { service?: IdleResult; baseline?: IdleResult };
  fanout: Partial<Record<Database | 'baseline', LoadMeasurement[]>>;
  durable: Partial<Record<Database | 'baseline', LoadMeasurement>>;
  rawWs: { service?: LoadMeasurement[]; baseline?: LoadMeasurement[] };
  /** The bare Socket.IO server that stores each message first, on each database. */
  stored: {
    fanout: Partial<Record<Database, LoadMeasurement[]>>;
    durable: Partial<Record<Database, LoadMeasurement>>;
  };
  cluster?: ClusterResult;
  errors: Array<{ phase: string; message: string }>;
}

export function emptyResults(): Results {
  return {
    idle: {},
    fanout: {},
    durable: {},
    rawWs: {},
    stored: { fanout: {}, durable: {} },
    errors: [],
  };
}

export const DATABASE_LABEL: Record<Database, string> = {
  sqlite: 'SQLite',
  postgres: 'PostgreSQL',
};
