import { RestClient } from '../../client/src';
import { AuthView } from './auth-view';
import { ChatPage } from './chat-page';
import { SessionKeeper } from './session-keeper';
import { byId } from './dom';
import { clearSession, loadSession, saveSession, type Session } from './session';

/** Entry point: the log-in form, or the chat page for a session kept in this tab. */
function main(): void {
  let page: ChatPage | undefined;
  const rest = new RestClient({
    baseUrl: location.origin,
    token: () => loadSession()?.token ?? '',
  });

  const signOut = (message = '') => {
    keeper.stop();
    page?.stop();
    page = undefined;
    clearSession();
    byId('whoami').textContent = '';
    byId('logout').hidden = true;
    auth.show(message);
  };

  const signIn = (session: Session) => {
    saveSession(session);
    auth.hide();
    byId('whoami').textContent = session.username;
    byId('logout').hidden = false;
    page = new ChatPage(session, rest, signOut);
    page.start();
    keeper.start(session);
  };

  // The SDK asks for the token at every connection and request: a refreshed one is used from
  // then on, and handed to the live connection so that it outlives the token it was made with.
  const refreshed = (session: Session) => {
    saveSession(session);
    page?.renewToken(session.token);
  };
  const keeper = new SessionKeeper(rest, refreshed, signOut);
  const tabBack = () => keeper.check();
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') tabBack();
  });
  window.addEventListener('pageshow', tabBack);
  window.addEventListener('online', tabBack);
  const auth = new AuthView(rest, signIn);
  byId('logout').addEventListener('click', () => signOut());
  const session = loadSession();
  if (session) signIn(session);
  else auth.show();
}

main();
