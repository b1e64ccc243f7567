/** "ada is typing…": each name shown until it stops for `clearAfterMs`, or sends its message. */
export class TypingView {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly line: HTMLElement,
    private readonly clearAfterMs = 3_000,
  ) {}

  typing(username: string): void {
    clearTimeout(this.timers.get(username));
    this.timers.set(
      username,
      setTimeout(() => this.stopped(username), this.clearAfterMs),
    );
    this.render();
  }

  stopped(username: string): void {
    clearTimeout(this.timers.get(username));
    if (this.timers.delete(username)) this.render();
  }

  reset(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.render();
  }

  private render(): void {
    const names = [...this.timers.keys()];
    this.line.textContent =
      names.length === 0
        ? ''
        : names.length === 1
          ? `${names[0]} is typing…`
          : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are typing…`;
  }
}
