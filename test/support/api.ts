import { createHmac, randomBytes } from 'node:crypto';
import request from 'supertest';
import type { MessageJson, RoomJson } from '@app/contract/models';
import { TEST_JWT_SECRET } from './test-app';

export interface TestUser {
  id: string;
  username: string;
  token: string;
}

let counter = 0;

/** A username no other test has taken. */
export function uniqueUsername(prefix = 'u'): string {
  counter += 1;
  return `${prefix}${counter}_${randomBytes(3).toString('hex')}`;
}

/** Every test user's password. */
export const TEST_PASSWORD = 'password-123';

export async function registerUser(url: string, username = uniqueUsername()): Promise<TestUser> {
  const password = TEST_PASSWORD;
  const registered = await request(url)
    .post('/api/auth/register')
    .send({ username, password })
    .expect(201);
  const login = await request(url).post('/api/auth/login').send({ username, password }).expect(200);
  return { id: registered.body.id, username, token: login.body.accessToken };
}

export async function createRoom(
  url: string,
  user: TestUser,
  body: { name?: string; isPrivate?: boolean } = {},
): Promise<RoomJson> {
  const response = await request(url)
    .post('/api/rooms')
    .set('Authorization', `Bearer ${user.token}`)
    .send({
      name: body.name ?? 'room',
      ...(body.isPrivate !== undefined ? { isPrivate: body.isPrivate } : {}),
    })
    .expect(201);
  return response.body as RoomJson;
}

export async function postMessage(
  url: string,
  user: TestUser,
  roomId: string,
  text: string,
  clientMsgId?: string,
): Promise<MessageJson> {
  const response = await request(url)
    .post(`/api/rooms/${roomId}/messages`)
    .set('Authorization', `Bearer ${user.token}`)
    .send({ text, ...(clientMsgId ? { clientMsgId } : {}) })
    .expect(201);
  return response.body as MessageJson;
}

/** `actor` adds `userId` to the room (the owner, or a user adding themself to a public room). */
export async function addMember(
  url: string,
  actor: TestUser,
  roomId: string,
  userId: string,
): Promise<void> {
  await request(url)
    .post(`/api/rooms/${roomId}/members`)
    .set('Authorization', `Bearer ${actor.token}`)
    .send({ userId })
    .expect(201);
}

/** `actor` removes `userId` from the room (the owner, or a member leaving). */
export async function removeMember(
  url: string,
  actor: TestUser,
  roomId: string,
  userId: string,
): Promise<void> {
  await request(url)
    .delete(`/api/rooms/${roomId}/members/${userId}`)
    .set('Authorization', `Bearer ${actor.token}`)
    .expect(204);
}

function base64url(value: object | string): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
    'base64url',
  );
}

/** Hand-made tokens for the failure cases: expired, wrongly signed, `alg: none`, other algorithms. */
export function forgeToken(
  claims: Record<string, unknown>,
  options: { secret?: string; alg?: string } = {},
): string {
  const alg = options.alg ?? 'HS256';
  const header = base64url({ alg, typ: 'JWT' });
  const payload = base64url(claims);
  if (alg === 'none') return `${header}.${payload}.`;
  const hmac = alg === 'HS512' ? 'sha512' : alg === 'HS384' ? 'sha384' : 'sha256';
  const signature = createHmac(hmac, options.secret ?? TEST_JWT_SECRET)
    .update(`${header}.${payload}`)
    .digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/**
 * Tokens every transport must refuse exactly like a missing one, each named:
 * expired, wrongly signed, unsigned, other algorithms, a claim the contract
 * needs missing or of the wrong type, a `sub` that names no possible user
 * (never a database error), and no JWT at all.
 */
export function badTokensFor(user: { id: string; username: string }): Array<[string, string]> {
  const claims = { sub: user.id, username: user.username, iat: nowSeconds() };
  const live = { ...claims, exp: nowSeconds() + 3600 };
  return [
    ['expired', forgeToken({ ...claims, iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 })],
    ['wrongly signed', forgeToken(live, { secret: 'another-secret-of-sufficient-length-000000' })],
    ['alg none', forgeToken(live, { alg: 'none' })],
    ['HS384', forgeToken(live, { alg: 'HS384' })],
    ['HS512', forgeToken(live, { alg: 'HS512' })],
    ['a numeric sub', forgeToken({ ...live, sub: 42 })],
    ['no exp', forgeToken(claims)],
    ['no iat', forgeToken({ sub: user.id, username: user.username, exp: nowSeconds() + 3600 })],
    ['no username', forgeToken({ sub: user.id, iat: nowSeconds(), exp: nowSeconds() + 3600 })],
    ['a string auth_time', forgeToken({ ...live, auth_time: String(nowSeconds()) })],
    ...['', 'user-42', 'auth0|123', `${user.id}x`].map((sub): [string, string] => [
      `sub ${JSON.stringify(sub)}`,
      forgeToken({ ...live, sub }),
    ]),
    ['three dotted parts', 'not.a.token'],
    ['garbage', 'garbage'],
  ];
}

/** A valid token of the user that expires `seconds` from now (a past instant for a negative count). */
export function tokenLasting(user: { id: string; username: string }, seconds: number): string {
  return forgeToken({
    sub: user.id,
    username: user.username,
    iat: nowSeconds(),
    exp: nowSeconds() + seconds,
  });
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
