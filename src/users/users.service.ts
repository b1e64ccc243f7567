import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, IsNull, Repository } from 'typeorm';
import { chunksOf } from '@app/common/chunks';
import { AppException } from '@app/common/errors/app.exception';
import { uuidv7 } from '@app/common/ids/uuid-v7';
import { usernameKey } from '@app/contract/usernames';
import { isUniqueViolation } from '@app/database/database-errors';
import { TransactionRunner } from '@app/database/transaction-runner';
import { User } from './user.entity';

export interface NewUser {
  username: string;
  passwordHash: string;
}

/** What another module does as an account goes (see `onDeletion`). */
export type DeletionStep = (user: { id: string; username: string }) => Promise<void>;

@Injectable()
export class UsersService {
  private readonly logger = new Logger(UsersService.name);
  private readonly deletionSteps: DeletionStep[] = [];

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly transactions: TransactionRunner,
  ) {}

  async create({ username, passwordHash }: NewUser): Promise<User> {
    const user = this.users.create({
      id: uuidv7(),
      username,
      usernameKey: usernameKey(username),
      passwordHash,
      createdAt: new Date(),
      deletedAt: null,
    });
    try {
      await this.transactions.write((manager) => manager.insert(User, user));
    } catch (error) {
      if (isUniqueViolation(error)) throw AppException.conflict('Username is already taken');
      throw error;
    }
    return user;
  }

  findActiveById(id: string): Promise<User | null> {
    return this.users.findOneBy({ id, deletedAt: IsNull() });
  }

  findActiveByUsername(username: string): Promise<User | null> {
    return this.users.findOneBy({ usernameKey: usernameKey(username), deletedAt: IsNull() });
  }

  /** Includes the password hash, which is never selected otherwise. */
  findActiveByUsernameWithHash(username: string): Promise<User | null> {
    return this.users
      .createQueryBuilder('user')
      .addSelect('user.passwordHash')
      .where('user.usernameKey = :key', { key: usernameKey(username) })
      .andWhere('user.deletedAt IS NULL')
      .getOne();
  }

  async replacePasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.transactions.write((manager) =>
      manager.update(User, { id, deletedAt: IsNull() }, { passwordHash }),
    );
  }

  /** Active users among the given names, matched regardless of case. */
  findActiveByUsernames(usernames: string[]): Promise<User[]> {
    if (usernames.length === 0) return Promise.resolve([]);
    const keys = [...new Set(usernames.map(usernameKey))];
    return this.users.findBy({ usernameKey: In(keys), deletedAt: IsNull() });
  }

  /** Those of the given ids whose account is deleted, or was never there. */
  async goneAmong(ids: string[]): Promise<string[]> {
    const active = new Set<string>();
    for (const chunk of chunksOf(ids)) {
      const rows = await this.users.find({
        select: { id: true },
        where: { id: In(chunk), deletedAt: IsNull() },
      });
      for (const row of rows) active.add(row.id);
    }
    return ids.filter((id) => !active.has(id));
  }

  /**
   * `step` runs before an account is marked deleted, so that a failure
   * leaves it to be deleted again, and once more after, for what raced in
   * meanwhile (a room handed to it by an owner leaving at that moment): it
   * must do nothing the second time unless something did race in.
   */
  onDeletion(step: DeletionStep): void {
    this.deletionSteps.push(step);
  }

  /**
   * `deleted` runs once the account is marked deleted, before the deletion
   * steps run again: what must follow the deletion at once (closing its
   * connections) must not wait on them.
   */
  async softDelete(id: string, deleted: () => void = () => undefined): Promise<void> {
    const found = await this.findActiveById(id);
    if (!found) return;
    const user = { id: found.id, username: found.username };
    for (const step of this.deletionSteps) await step(user);
    try {
      await this.transactions.write((manager) =>
        manager.update(User, { id, deletedAt: IsNull() }, { deletedAt: new Date() }),
      );
    } catch (error) {
      if (await this.deletedAfterAll(id)) deleted();
      throw error;
    }
    deleted();
    await this.afterDeletion(user);
  }

  /**
   * A write that failed may have been committed all the same (the answer
   * lost, a timeout after the commit): then the account is gone, and its
   * connections must close now, as no retry would close them (its token is
   * refused from then on). Unknown when the database cannot say either.
   */
  private async deletedAfterAll(id: string): Promise<boolean> {
    try {
      return (await this.findActiveById(id)) === null;
    } catch {
      return false;
    }
  }

  /** Best effort: the account is gone whatever happens here, and its connections must still close. */
  private async afterDeletion(user: { id: string; username: string }): Promise<void> {
    for (const step of this.deletionSteps) {
      try {
        await step(user);
      } catch (error) {
        this.logger.warn(`After deleting account ${user.id}: ${(error as Error).message}`);
      }
    }
  }
}
