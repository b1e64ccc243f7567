import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { SerialQueue } from '@app/common/serial-queue';

/**
 * The way to run a transaction. better-sqlite3 gives TypeORM a single
 * connection, where two concurrent transactions would silently nest; there
 * they take turns. PostgreSQL runs them concurrently on pooled connections,
 * READ COMMITTED by the session default (see `typeormOptions`).
 */
@Injectable()
export class TransactionRunner {
  private readonly sqliteQueue = new SerialQueue();

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  get isPostgres(): boolean {
    return this.dataSource.options.type === 'postgres';
  }

  /** For single statements, each of which commits alone. */
  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.isPostgres) return this.dataSource.transaction(work);
    return this.sqliteQueue.run(() => this.dataSource.transaction(work));
  }
}
