/**
 * Messages kept on screen while the reader follows the newest: a tab left
 * open on a busy room would otherwise hold every message it ever saw. Those
 * let go come back as an older page when the reader scrolls up to them.
 */
export const MAX_SHOWN_MESSAGES = 1_000;
