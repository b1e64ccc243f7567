import type { RestClient, RoomJson } from '../../client/src';
import { byId, errorText } from './dom';
import { addedNotice } from './notices';

/**
 * Adds someone, by name, to the room on screen: the owner to a private
 * room, any member to a public one (the server says no to anyone else).
 */
export class AddMemberForm {
  private readonly form = byId<HTMLFormElement>('add-member');
  private readonly button = this.form.querySelector('button') as HTMLButtonElement;
  private room: RoomJson | undefined;
  /** An add under way: a second submit (a double click) is dropped rather than add twice. */
  private adding = false;

  constructor(
    private readonly rest: RestClient,
    private readonly userId: string,
    private readonly signal: AbortSignal,
    private readonly notice: (text: string) => void,
  ) {
    const submit = (event: SubmitEvent) => {
      event.preventDefault();
      void this.add();
    };
    this.form.addEventListener('submit', submit, { signal });
    // The form outlives a sign-out: an add of the last user's may have left it disabled.
    this.button.disabled = false;
  }

  /**
   * The room the form adds to; none hides it, and a name being typed goes.
   * It shows once the room's join has answered (`roomRead`): only members
   * add to a public room, which a join makes one of.
   */
  show(room: RoomJson | undefined): void {
    this.room = room;
    this.form.hidden = true;
    this.form.reset();
  }

  /**
   * The room as a join read it: its owner may have changed since the list was
   * (an owner who left hands a room over), so the form may show or go. Only
   * its owner adds to a private room: others get no form for it.
   */
  roomRead(room: RoomJson): void {
    if (room.id !== this.room?.id) return;
    this.room = room;
    this.form.hidden = !this.mayAdd(room);
  }

  private mayAdd(room: RoomJson | undefined): boolean {
    return room !== undefined && (!room.isPrivate || room.ownerId === this.userId);
  }

  private async add(): Promise<void> {
    const room = this.room;
    const input = this.form.elements.namedItem('username') as HTMLInputElement;
    const name = input.value.trim();
    if (!room || !name || this.adding) return;
    // Another room, or another user, by the time the answer comes: it is not theirs to see.
    const stillShown = () => !this.signal.aborted && this.room?.id === room.id;
    this.setAdding(true);
    try {
      const user = await this.rest.findUser(name);
      // The next user's token would add in their name.
      if (!stillShown()) return;
      await this.rest.addMember(room.id, user.id);
      if (!stillShown()) return;
      // A next name typed meanwhile stays.
      if (input.value.trim() === name) input.value = '';
      this.notice(addedNotice(user.username, room.name));
    } catch (error) {
      if (stillShown()) this.notice(`Could not add ${name}: ${errorText(error)}`);
    } finally {
      // Signed out meanwhile: the form is the next user's now.
      if (!this.signal.aborted) this.setAdding(false);
    }
  }

  private setAdding(adding: boolean): void {
    this.adding = adding;
    this.button.disabled = adding;
  }
}
