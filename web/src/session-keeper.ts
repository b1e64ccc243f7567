import { ChatError, ErrorCode, type RestClient } from '../../client/src';
import type { Session } from './session';

/** The soonest a refresh is tried again after one that failed for now. */
const RETRY_MS = 30_000;
/** Never sooner than this after the last refresh. */
const MIN_DELAY_MS = 5_000;

/**
 * Keeps the signed-in user's token fresh: halfway through its life it is
 * exchanged for a new one of the same session, so that a tab left open does
 * not sign its user out when the first token expires. A refresh the server
 * refuses (the session is too old, the account gone) ends the session; one
 * that fails for now is tried again.
 */
export class SessionKeeper {
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The refresh due, by the wall clock: a timer of a tab that slept fires late. */
  private due: { at: number; session: Session } | undefined;
  private generation = 0;

  constructor(
    private readonly rest: RestClient,
    private readonly refreshed: (session: Session) => void,
    private readonly ended: (message: string) => void,
  ) {}

  start(session: Session): void {
    this.stop();
    this.schedule(session, halfOfWhatIsLeft(session));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due = undefined;
    this.generation += 1;
  }

  /**
   * For a tab coming back (shown again, online again, woken up): a refresh
   * whose time came while it slept runs now, before the token expires if it
   * still can. A token that expired meanwhile cannot be refreshed; the
   * session then ends, as it would without refreshing.
   */
  check(): void {
    if (this.due && Date.now() >= this.due.at) this.refreshNow(this.due.session);
  }

  private schedule(session: Session, delayMs: number): void {
    clearTimeout(this.timer);
    this.due = { at: Date.now() + delayMs, session };
    this.timer = setTimeout(() => this.refreshNow(session), delayMs);
  }

  private refreshNow(session: Session): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due = undefined;
    void this.refresh(session, this.generation);
  }

  private async refresh(session: Session, generation: number): Promise<void> {
    try {
      const { accessToken, expiresIn } = await this.rest.refresh(session.token);
      if (generation !== this.generation) return;
      const fresh = { ...session, token: accessToken, expiresAt: Date.now() + expiresIn * 1000 };
      this.refreshed(fresh);
      this.schedule(fresh, halfOfWhatIsLeft(fresh));
    } catch (error) {
      if (generation !== this.generation) return;
      if (error instanceof ChatError && error.code === ErrorCode.Unauthorized) {
        this.ended('Your session expired: log in again.');
        return;
      }
      this.schedule(session, Math.min(RETRY_MS, halfOfWhatIsLeft(session)));
    }
  }
}

/** Half the token's remaining life; at once for a session that does not say when it expires. */
function halfOfWhatIsLeft(session: Session): number {
  if (session.expiresAt === undefined) return 0;
  return Math.max(MIN_DELAY_MS, (session.expiresAt - Date.now()) / 2);
}
