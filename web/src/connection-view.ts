import type { ConnectionState } from '../../client/src';

const COUNTDOWN_TICK_MS = 250;

/** The connection pill in the top bar, with a live countdown while reconnecting. */
export class ConnectionView {
  private countdown: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly pill: HTMLElement,
    private readonly retryButton: HTMLButtonElement,
  ) {}

  /** Signed out: offline, with nothing to retry. */
  reset(): void {
    this.render({ status: 'offline', reason: 'closed' });
    this.retryButton.hidden = true;
  }

  render(state: ConnectionState): void {
    clearInterval(this.countdown);
    this.pill.dataset.status = state.status;
    this.retryButton.hidden = !['reconnecting', 'offline'].includes(state.status);
    this.pill.textContent = describe(state);
    if (state.status === 'reconnecting') {
      this.countdown = setInterval(
        () => (this.pill.textContent = describe(state)),
        COUNTDOWN_TICK_MS,
      );
    }
  }
}

function describe(state: ConnectionState): string {
  switch (state.status) {
    case 'connecting':
      return 'Connecting…';
    case 'connected':
      return 'Connected';
    case 'reconnecting': {
      const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      return `Reconnecting in ${seconds}s (attempt ${state.attempt})`;
    }
    case 'offline':
      return state.reason === 'retries-exhausted' ? 'Offline: gave up retrying' : 'Offline';
    case 'unauthorized':
      return 'Signed out: session expired';
  }
}
