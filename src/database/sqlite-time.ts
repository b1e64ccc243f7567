/** SQLite's own text for an instant, as the ORM writes and reads it: UTC, a space, milliseconds. */
export const toSqliteTime = (date: Date) => date.toISOString().replace('T', ' ').slice(0, -1);

/** An instant read raw from SQLite (see `toSqliteTime`). */
export const fromSqliteTime = (text: string) => new Date(`${text.replace(' ', 'T')}Z`);
