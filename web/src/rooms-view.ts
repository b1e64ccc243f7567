import type { RestClient, RoomJson } from '../../client/src';
import { byId, element, errorText } from './dom';

/** The room list and the form that creates a room. */
export class RoomsView {
  private readonly list = byId<HTMLUListElement>('room-list');
  private readonly form = byId<HTMLFormElement>('create-room');
  private selected: string | undefined;

  constructor(
    private readonly rest: RestClient,
    private readonly signal: AbortSignal,
    private readonly on: { open(room: RoomJson): void; error(message: string): void },
  ) {
    const submit = (event: SubmitEvent) => {
      event.preventDefault();
      void this.create();
    };
    this.form.addEventListener('submit', submit, { signal });
    byId('refresh-rooms').addEventListener('click', () => void this.refresh(), { signal });
  }

  async refresh(): Promise<void> {
    try {
      const page = await this.rest.listRooms({ limit: 100 });
      if (!this.signal.aborted) this.render(page.items);
    } catch (error) {
      if (!this.signal.aborted) this.on.error(`Could not load rooms: ${errorText(error)}`);
    }
  }

  /** Signed out: the list, its buttons and a room name being typed go with the user. */
  reset(): void {
    this.selected = undefined;
    this.list.replaceChildren();
    this.form.reset();
  }

  select(roomId: string): void {
    this.selected = roomId;
    for (const item of this.list.querySelectorAll<HTMLElement>('li')) {
      item.classList.toggle('selected', item.dataset.roomId === roomId);
    }
  }

  private async create(): Promise<void> {
    const input = this.form.elements.namedItem('name') as HTMLInputElement;
    const name = input.value.trim();
    if (!name) return;
    try {
      const room = await this.rest.createRoom({ name });
      // Signed out meanwhile: the page may already belong to the next user.
      if (this.signal.aborted) return;
      input.value = '';
      await this.refresh();
      if (!this.signal.aborted) this.on.open(room);
    } catch (error) {
      if (!this.signal.aborted) this.on.error(`Could not create the room: ${errorText(error)}`);
    }
  }

  private render(rooms: readonly RoomJson[]): void {
    this.list.replaceChildren(...rooms.map((room) => this.item(room)));
    if (this.selected) this.select(this.selected);
  }

  private item(room: RoomJson): HTMLLIElement {
    const button = element('button', { className: 'room', text: `# ${room.name}` });
    button.type = 'button';
    button.addEventListener('click', () => this.on.open(room));
    return element('li', { data: { roomId: room.id } }, [button]);
  }
}
