const MENTION_PATTERN = /(?<![\w@])@([a-zA-Z0-9_.-]{3,32})/g;

/**
 * The usernames a text mentions. A trailing `.` or `-` is usually punctuation
 * ("thanks @ada."), so both spellings are returned and the caller keeps real users.
 */
export function extractMentions(text: string): string[] {
  // Most messages mention nobody: skip the pattern's look-behind scan.
  if (!text.includes('@')) return [];
  const names = new Set<string>();
  for (const [, name] of text.matchAll(MENTION_PATTERN)) {
    names.add(name.toLowerCase());
    const trimmed = name.replace(/[.-]+$/, '');
    if (trimmed.length >= 3) names.add(trimmed.toLowerCase());
  }
  return [...names];
}
