import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import bcrypt from 'bcryptjs';
import type { AllConfig } from '@app/config/app-config';

/**
 * bcrypt reads only the first 72 bytes of its input, so passwords are
 * pre-hashed to a fixed 44 characters: every character of a long password counts.
 */
function prehash(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('base64');
}

@Injectable()
export class PasswordHasher {
  /** Compared against when a username does not exist, so both paths cost the same. */
  private dummyHash: Promise<string> | undefined;
  /** How long a comparison at the current cost took, last time one ran. */
  private currentCostMs: number | undefined;

  constructor(private readonly config: ConfigService<AllConfig, true>) {}

  hash(password: string): Promise<string> {
    return bcrypt.hash(prehash(password), this.config.get('auth.bcryptRounds', { infer: true }));
  }

  /**
   * A wrong password against a hash made at another cost takes at least as
   * long as one at the current cost, as a login of an unknown name does.
   */
  async verify(password: string, hash: string): Promise<boolean> {
    const startedAt = performance.now();
    const valid = await bcrypt.compare(prehash(password), hash);
    if (!this.needsRehash(hash)) this.currentCostMs = performance.now() - startedAt;
    else if (!valid) await this.spendCurrentCost(password, startedAt);
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
    this.dummyHash ??= this.hash('not-a-real-password');
    const dummyHash = await this.dummyHash;
    const startedAt = performance.now();
    await bcrypt.compare(prehash(password), dummyHash);
    this.currentCostMs = performance.now() - startedAt;
    return false;
  }

  /** Waits out what a comparison at the current cost would take from `startedAt`; compares once when not measured yet. */
  private async spendCurrentCost(password: string, startedAt: number): Promise<void> {
    if (this.currentCostMs === undefined) return void (await this.verifyAgainstNothing(password));
    const remainingMs = this.currentCostMs - (performance.now() - startedAt);
    if (remainingMs > 0) await new Promise((resolve) => setTimeout(resolve, remainingMs));
  }
}
