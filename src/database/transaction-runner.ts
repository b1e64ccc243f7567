import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { SerialQueue } from '@app/common/serial-queue';

/**
 * The way to run a transaction, or a write that commits alone. better-sqlite3
 * gives TypeORM a single connection, where two concurrent transactions would
 * silently nest, and a lone write issued while a transaction is open would
 * join it (and be undone by its rollback); there all of them take turns.
 * PostgreSQL runs them concurrently on pooled connections, READ COMMITTED by
 * the session default (see `typeormOptions`).
 */
@Injectable()
export class TransactionRunner {
  private readonly sqliteQueue = new SerialQueue();

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  get isPostgres(): boolean {
    return this.dataSource.options.type === 'postgres';
  }

  run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.isPostgres) return this.dataSource.transaction(work);
    return this.sqliteQueue.run(() => this.dataSource.transaction(work));
  }

  /**
   * Statements outside any transaction, each of which commits alone: on
   * PostgreSQL on a pooled connection, on SQLite in its turn.
   */
  write<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.isPostgres) return work(this.dataSource.manager);
    return this.sqliteQueue.run(() => work(this.dataSource.manager));
  }
}
