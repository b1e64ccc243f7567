import { Injectable, Logger } from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import { ErrorCode } from '@app/common/errors/error-code';
import { toErrorBody } from '@app/common/errors/to-error-body';
import { couldBeUsername, usernameKey } from '@app/contract/usernames';
import { DeliveryService } from '@app/delivery/delivery.service';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { RateLimitService } from '@app/throttling/rate-limit.service';
import type { User } from '@app/users/user.entity';
import { UsersService } from '@app/users/users.service';
import type { AuthUser } from './auth-user';
import type { LoginDto, RegisterDto } from './dto/credentials.dto';
import { PasswordHasher } from './password-hasher';
import { TokenService, type IssuedToken } from './token.service';

@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);
  /** user id → the rehash of their password under way */
  private readonly rehashing = new Map<string, Promise<void>>();

  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly tokens: TokenService,
    private readonly delivery: DeliveryService,
    private readonly shutdown: GracefulShutdown,
    private readonly rateLimits: RateLimitService,
  ) {
    shutdown.register('finish-writes', () =>
      Promise.all(this.rehashing.values()).then(() => undefined),
    );
  }

  async register({ username, password }: RegisterDto): Promise<User> {
    const passwordHash = await this.hasher.hash(password);
    return this.users.create({ username, passwordHash });
  }

  /**
   * Unknown user and wrong password give the same answer after the same work.
   * Each name has a budget of failed attempts over every address, counted for
   * unknown names alike and before any hashing (a success, or an
   * UNAVAILABLE before any verdict, gives its attempt back): guesses at one account from
   * many addresses stop there, and its owner signing in on every device
   * spends none of it.
   */
  async login({ username, password }: LoginDto): Promise<IssuedToken> {
    // A name no account can have needs no budget: there is nothing to guess at, nor to keep.
    const budgeted = couldBeUsername(username);
    const giveBack = () =>
      budgeted ? this.rateLimits.refund('login', usernameKey(username)) : Promise.resolve();
    if (budgeted) await this.rateLimits.consume('login', usernameKey(username));
    const user = await this.checkedUser(username, password).catch(async (error: unknown) => {
      if (toErrorBody(error).code === ErrorCode.Unavailable) await giveBack();
      throw error;
    });
    if (!user) throw AppException.unauthorized('Invalid username or password');
    await giveBack();
    // Deleted while its password was checked: a token now would never work.
    if (!(await this.users.findActiveById(user.id)))
      throw AppException.unauthorized('Invalid username or password');
    if (this.hasher.needsRehash(user.passwordHash) && !this.shutdown.draining)
      this.rehashInBackground(user, password);
    return this.tokens.issue(user);
  }

  /** The user whose password this is; undefined for a wrong password or an unknown name. */
  private async checkedUser(username: string, password: string): Promise<User | undefined> {
    const user = await this.users.findActiveByUsernameWithHash(username);
    const valid = user
      ? await this.hasher.verify(password, user.passwordHash)
      : await this.hasher.verifyAgainstNothing(password);
    return user && valid ? user : undefined;
  }

  /**
   * At the cost `BCRYPT_ROUNDS` asks now, after the login has answered (its
   * time tells nothing once the password was right), once at a time per
   * user, and not once the node drains (shutdown waits for those under way);
   * the login stands whatever happens here.
   */
  private rehashInBackground(user: User, password: string): void {
    if (this.rehashing.has(user.id)) return;
    const done = this.hasher
      .hash(password)
      .then((passwordHash) => this.users.replacePasswordHash(user.id, passwordHash))
      .catch((error: unknown) =>
        this.logger.warn(
          `Could not rehash the password of ${user.id}: ${(error as Error).message}`,
        ),
      )
      .finally(() => this.rehashing.delete(user.id));
    this.rehashing.set(user.id, done);
  }

  refresh(user: AuthUser): Promise<IssuedToken> {
    return this.tokens.refresh(user);
  }

  async profile(userId: string): Promise<User> {
    const user = await this.users.findActiveById(userId);
    if (!user) throw AppException.unauthorized();
    return user;
  }

  /** Also closes the user's live connections on every node: they authenticated before. */
  async deleteAccount(userId: string): Promise<void> {
    await this.users.softDelete(userId, () => this.delivery.accountClosed(userId));
  }
}
