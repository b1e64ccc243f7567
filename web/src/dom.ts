/** The element with this id; index.html defines them all, so a missing one is a bug. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from index.html`);
  return found as T;
}

export interface ElementOptions {
  className?: string;
  text?: string;
  data?: Record<string, string>;
  title?: string;
}

/** A new element with text set as text (never as HTML: messages are user input). */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  options: ElementOptions = {},
  children: Node[] = [],
): HTMLElementTagNameMap[K] {
  const created = document.createElement(tag);
  if (options.className) created.className = options.className;
  if (options.text !== undefined) created.textContent = options.text;
  if (options.title) created.title = options.title;
  for (const [key, value] of Object.entries(options.data ?? {})) created.dataset[key] = value;
  created.append(...children);
  return created;
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** What to tell the user about a failure: the contract's message when there is one. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
