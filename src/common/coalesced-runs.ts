/**
 * Runs a task on request, one run at a time: the requests that come while
 * it runs share one more run after it, however many they are.
 */
export class CoalescedRuns {
  private running?: Promise<void>;
  private again = false;

  constructor(private readonly task: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.runWhileAsked();
    return this.running;
  }

  /**
   * Ends in the same turn as its last check of `again`, so that no request
   * falls in between; a failed run is followed by one asked for meanwhile.
   */
  private async runWhileAsked(): Promise<void> {
    try {
      do {
        this.again = false;
        try {
          await this.task();
        } catch (error) {
          if (!this.again) throw error;
        }
      } while (this.again);
    } finally {
      this.running = undefined;
    }
  }
}
