import type { RestClient, RoomJson } from '../../client/src';
import { byId, errorText } from './dom';
import { addedNotice } from './notices';

/**
 * Adds someone, by name, to the room on screen: the owner to a private
 * room, any member to a public one (the server says no to anyone else).
 */
export class AddMemberForm {
  private readonly form = byId<HTMLFormElement>('add-member');
  private room: RoomJson | undefined;

  constructor(
    private readonly rest: RestClient,
    private readonly signal: AbortSignal,
    private readonly notice: (text: string) => void,
  ) {
    const submit = (event: SubmitEvent) => {
      event.preventDefault();
      void this.add();
    };
    this.form.addEventListener('submit', submit, { signal });
  }

  /** The room the form adds to; none hides it, and a name being typed goes. */
  show(room: RoomJson | undefined): void {
    this.room = room;
    this.form.hidden = room === undefined;
    this.form.reset();
  }

  private async add(): Promise<void> {
    const room = this.room;
    const input = this.form.elements.namedItem('username') as HTMLInputElement;
    const name = input.value.trim();
    if (!room || !name) return;
    // Another room, or another user, by the time the answer comes: it is not theirs to see.
    const stillShown = () => !this.signal.aborted && this.room?.id === room.id;
    try {
      const user = await this.rest.findUser(name);
      await this.rest.addMember(room.id, user.id);
      if (!stillShown()) return;
      input.value = '';
      this.notice(addedNotice(user.username, room.name));
    } catch (error) {
      if (stillShown()) this.notice(`Could not add ${name}: ${errorText(error)}`);
    }
  }
}
