import type { UserSummaryJson } from '../../client/src';
import { element } from './dom';

/** Who is connected to the current room now. */
export class PresenceView {
  private readonly users = new Map<string, UserSummaryJson>();

  constructor(
    private readonly list: HTMLUListElement,
    private readonly me: string,
  ) {}

  replace(users: readonly UserSummaryJson[]): void {
    this.users.clear();
    for (const user of users) this.users.set(user.id, user);
    this.render();
  }

  joined(user: UserSummaryJson): void {
    this.users.set(user.id, user);
    this.render();
  }

  left(user: UserSummaryJson): void {
    if (this.users.delete(user.id)) this.render();
  }

  private render(): void {
    const sorted = [...this.users.values()].sort((a, b) => a.username.localeCompare(b.username));
    this.list.replaceChildren(
      ...sorted.map((user) =>
        element('li', {
          className: user.username === this.me ? 'me' : '',
          text: user.username,
          data: { userId: user.id },
        }),
      ),
    );
  }
}
