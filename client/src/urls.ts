/** `http://host/` and `http://host` name the same service; paths are appended to the latter. */
export function withoutTrailingSlashes(url: string): string {
  return url.replace(/\/+$/, '');
}
