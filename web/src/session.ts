/** The signed-in user, kept for the tab's lifetime only (sessionStorage). */
export interface Session {
  token: string;
  userId: string;
  username: string;
  /** When the token stops being valid (epoch milliseconds); absent in sessions kept before it was. */
  expiresAt?: number;
}

const KEY = 'realtime-chat.session';

export function loadSession(): Session | undefined {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<Session>;
    return parsed.token && parsed.userId && parsed.username ? (parsed as Session) : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
