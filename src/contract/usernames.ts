/** The characters of a username: ASCII only, so that case folding is ASCII too. */
export const USERNAME_PATTERN = /^[a-zA-Z0-9_.-]+$/;
/** Within the users' `varchar(32)` columns. */
export const USERNAME_LENGTH = { min: 3, max: 32 } as const;

/** Whether `name` could be someone's username: one that is not names no account. */
export function couldBeUsername(name: string): boolean {
  return (
    name.length >= USERNAME_LENGTH.min &&
    name.length <= USERNAME_LENGTH.max &&
    USERNAME_PATTERN.test(name)
  );
}

/**
 * The key a username is unique and looked up by. Only ASCII letters fold:
 * `toLowerCase` would also turn the Kelvin sign into `k`, so that a name no
 * one can register would match one someone has.
 */
export function usernameKey(username: string): string {
  return username.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}
