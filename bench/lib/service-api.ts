import { randomBytes } from 'node:crypto';
import type { RoomJson } from '@app/contract/models';

/** A registered user of the service, logged in. */
export interface ServiceUser {
  id: string;
  username: string;
  token: string;
}

const PASSWORD = 'bench-password-1';

async function postJson<T>(url: string, body: object, token?: string): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** A bench user's name: `<prefix>_` and 8 hex digits (the baselines use names of the same shape). */
export function benchUsername(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export async function registerUser(baseUrl: string, prefix: string): Promise<ServiceUser> {
  const username = benchUsername(prefix);
  const { id } = await postJson<{ id: string }>(`${baseUrl}/api/auth/register`, {
    username,
    password: PASSWORD,
  });
  const { accessToken } = await postJson<{ accessToken: string }>(`${baseUrl}/api/auth/login`, {
    username,
    password: PASSWORD,
  });
  return { id, username, token: accessToken };
}

export function registerUsers(
  baseUrl: string,
  prefix: string,
  count: number,
): Promise<ServiceUser[]> {
  return Promise.all(
    Array.from({ length: count }, (_, index) => registerUser(baseUrl, `${prefix}${index}`)),
  );
}

export async function createRooms(
  baseUrl: string,
  owner: ServiceUser,
  count: number,
): Promise<RoomJson[]> {
  const rooms: RoomJson[] = [];
  for (let index = 0; index < count; index++)
    rooms.push(
      await postJson<RoomJson>(`${baseUrl}/api/rooms`, { name: `bench ${index}` }, owner.token),
    );
  return rooms;
}

/** Resolves once `/health/ready` answers 200, or throws after `timeoutMs`. */
export async function waitUntilReady(
  baseUrl: string,
  isAlive: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error('the service exited during start-up');
    try {
      const response = await fetch(`${baseUrl}/health/ready`);
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the service was not ready after ${timeoutMs} ms`);
}
