import { createHash } from 'node:crypto';
import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import bcrypt from 'bcryptjs';
import type { AllConfig } from '@app/config/app-config';
import { MetricsService } from '@app/metrics/metrics.service';
import { PasswordThreads } from './password-threads';

/**
 * bcrypt reads only the first 72 bytes of its input, so passwords are
 * pre-hashed to a fixed 44 characters: every character of a long password counts.
 */
export function prehash(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('base64');
}

@Injectable()
export class PasswordHasher implements OnModuleInit, OnApplicationShutdown {
  /** Compared against when a username does not exist, so both paths cost the same. */
  private dummyHash: Promise<string> | undefined;
  private readonly threads: PasswordThreads;

  constructor(
    private readonly config: ConfigService<AllConfig, true>,
    metrics: MetricsService,
  ) {
    const { hashThreads, hashQueueLimit } = config.get('auth', { infer: true });
    this.threads = new PasswordThreads(hashThreads, hashQueueLimit, () =>
      metrics.passwordTasksRefused.inc(),
    );
    metrics.watchPasswordThreads(this.threads);
  }

  /**
   * Made before the first login: made on demand, it cost the first login of
   * an unknown name (and those at the same time) a hash more than a known
   * name's, on every node after every start.
   */
  async onModuleInit(): Promise<void> {
    await this.dummy();
  }

  /** After the rehashes the shutdown waited for: nothing is hashed any more. */
  async onApplicationShutdown(): Promise<void> {
    await this.threads.close();
  }

  async hash(password: string): Promise<string> {
    const rounds = this.config.get('auth.bcryptRounds', { infer: true });
    return (await this.threads.run({ kind: 'hash', input: prehash(password), rounds })) as string;
  }

  /**
   * A wrong password against a hash made at another cost also spends a
   * comparison at the current cost, as a login of an unknown name does: real
   * work, which queues behind other logins as theirs does (a timer would not).
   */
  async verify(password: string, hash: string): Promise<boolean> {
    const valid = await this.compare(password, hash);
    // The verdict is in: a padding that could not run (no thread free) must not turn it into a 503.
    if (!valid && this.needsRehash(hash))
      await this.verifyAgainstNothing(password).catch(() => false);
    return valid;
  }

  /**
   * Whether a hash was made at another cost than `BCRYPT_ROUNDS` now asks:
   * its logins would take another time than a login of an unknown name,
   * which is compared at the current cost, and tell that the name exists.
   */
  needsRehash(hash: string): boolean {
    return bcrypt.getRounds(hash) !== this.config.get('auth.bcryptRounds', { infer: true });
  }

  /** Spends the time of a real comparison and always fails. */
  async verifyAgainstNothing(password: string): Promise<false> {
    await this.compare(password, await this.dummy());
    return false;
  }

  private async compare(password: string, hash: string): Promise<boolean> {
    return (await this.threads.run({ kind: 'compare', input: prehash(password), hash })) === true;
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= this.hash('not-a-real-password');
    return this.dummyHash;
  }
}
