import { loadConfig } from './app-config';
import { parseCorsOrigins } from './cors-origins';
import { InvalidConfigurationError } from './env.validation';

describe('parseCorsOrigins', () => {
  it('reads nothing, *, and origins as browsers send them', () => {
    expect(parseCorsOrigins('')).toEqual([]);
    expect(parseCorsOrigins('*')).toEqual(['*']);
    expect(parseCorsOrigins(' https://chat.example.com , http://localhost:5173 ')).toEqual([
      'https://chat.example.com',
      'http://localhost:5173',
    ]);
  });

  it.each(['capacitor://localhost', 'chrome-extension://abcdefghijklmnop', 'tauri://localhost'])(
    'reads %s, the origin an app on a scheme of its own sends',
    (origin) => expect(parseCorsOrigins(origin)).toEqual([origin]),
  );

  it.each([
    ['https://chat.example.com/', 'did you mean https://chat.example.com?'],
    ['https://chat.example.com/app', 'did you mean https://chat.example.com?'],
    ['HTTPS://Chat.example.com', 'did you mean https://chat.example.com?'],
    ['https://chat.example.com:443', 'did you mean https://chat.example.com?'],
    ['chat.example.com', '"chat.example.com" is not one'],
    ['file:///tmp/page.html', '"file:///tmp/page.html" is not one'],
    ['capacitor://localhost/', 'did you mean capacitor://localhost?'],
  ])('refuses %s, saying what it expects', (entry, hint) => {
    expect(() => parseCorsOrigins(`https://ok.example.com,${entry}`)).toThrow(
      expect.objectContaining({ message: expect.stringContaining(hint) }),
    );
    expect(() => parseCorsOrigins(entry)).toThrow(/^CORS_ORIGINS must be \*/);
  });
});

describe('CORS_ORIGINS in the configuration', () => {
  it('allows no other origin by default, and passes the list on', () => {
    expect(loadConfig({}).http.corsOrigins).toEqual([]);
    expect(
      loadConfig({ CORS_ORIGINS: 'https://a.example,https://b.example' }).http.corsOrigins,
    ).toEqual(['https://a.example', 'https://b.example']);
  });

  it('stops start-up on an entry no browser would match, naming CORS_ORIGINS', () => {
    const load = () => loadConfig({ CORS_ORIGINS: 'https://chat.example.com/' });
    expect(load).toThrow(InvalidConfigurationError);
    expect(load).toThrow(
      /CORS_ORIGINS: CORS_ORIGINS must be \*.*did you mean https:\/\/chat\.example\.com\?/,
    );
  });
});
