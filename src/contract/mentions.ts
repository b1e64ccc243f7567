import { USERNAME_LENGTH } from './usernames';

/** A run of the characters usernames are made of, after an `@` that starts a word. */
const MENTION_PATTERN = /(?<![\w@])@([a-zA-Z0-9_.-]+)/g;

const isUsernameLength = (name: string) =>
  name.length >= USERNAME_LENGTH.min && name.length <= USERNAME_LENGTH.max;

/** Without trailing `.` and `-`, by a loop: a pattern would backtrack over long runs of them. */
function withoutTrailingPunctuation(name: string): string {
  let end = name.length;
  while (end > 0 && (name[end - 1] === '.' || name[end - 1] === '-')) end -= 1;
  return name.slice(0, end);
}

/**
 * The usernames a text mentions. A trailing `.` or `-` is usually punctuation
 * ("thanks @ada."), so both spellings are returned and the caller keeps real
 * users. A run longer than a username mentions nobody, not its first letters.
 */
export function extractMentions(text: string): string[] {
  // Most messages mention nobody: skip the pattern's look-behind scan.
  if (!text.includes('@')) return [];
  const names = new Set<string>();
  for (const [, run] of text.matchAll(MENTION_PATTERN)) {
    for (const name of [run, withoutTrailingPunctuation(run)])
      if (isUsernameLength(name)) names.add(name.toLowerCase());
  }
  return [...names];
}
