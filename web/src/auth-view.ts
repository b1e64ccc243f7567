import { ChatError, RestClient } from '../../client/src';
import { byId } from './dom';
import type { Session } from './session';

type AuthAction = 'login' | 'register';

/** The log-in / register form; resolves the session once the server accepted the user. */
export class AuthView {
  private readonly view = byId('auth-view');
  private readonly form = byId<HTMLFormElement>('auth-form');
  private readonly error = byId('auth-error');

  constructor(
    private readonly rest: RestClient,
    private readonly onSignedIn: (session: Session) => void,
  ) {
    this.form.addEventListener('submit', (event) => this.submit(event));
  }

  show(message = ''): void {
    this.view.hidden = false;
    this.error.textContent = message;
  }

  hide(): void {
    this.view.hidden = true;
  }

  private submit(event: SubmitEvent): void {
    event.preventDefault();
    const action =
      (event.submitter as HTMLButtonElement | null)?.value === 'register' ? 'register' : 'login';
    const credentials = { username: this.field('username'), password: this.field('password') };
    this.setBusy(true);
    this.signIn(action, credentials)
      .then((session) => {
        this.form.reset();
        this.onSignedIn(session);
      })
      .catch((error: unknown) => {
        this.error.textContent =
          error instanceof ChatError ? error.message : 'Something went wrong';
      })
      .finally(() => this.setBusy(false));
  }

  private async signIn(
    action: AuthAction,
    credentials: { username: string; password: string },
  ): Promise<Session> {
    if (action === 'register') await this.rest.register(credentials);
    const { accessToken, expiresIn } = await this.rest.login(credentials);
    const expiresAt = Date.now() + expiresIn * 1000;
    const me = await new RestClient({ baseUrl: location.origin, token: () => accessToken }).me();
    return { token: accessToken, userId: me.id, username: me.username, expiresAt };
  }

  private field(name: 'username' | 'password'): string {
    return (this.form.elements.namedItem(name) as HTMLInputElement).value;
  }

  private setBusy(busy: boolean): void {
    for (const button of this.form.querySelectorAll('button')) button.disabled = busy;
  }
}
