import type { RestClient, RoomJson } from '../../client/src';
import { byId, element, errorText } from './dom';

const ROOMS_PAGE = 100;

/** The room list, a page at a time, and the form that creates a room. */
export class RoomsView {
  private readonly list = byId<HTMLUListElement>('room-list');
  private readonly form = byId<HTMLFormElement>('create-room');
  private readonly more: HTMLLIElement;
  private selected: string | undefined;
  /** Where the next page starts; null once every room is listed. */
  private nextCursor: string | null = null;
  /**
   * Rooms listed on whatever page they are: made here, invited to or opened,
   * with the refresh count when they were. The list goes by id, oldest
   * first, so a new room is on the last page.
   */
  private readonly own = new Map<string, { room: RoomJson; since: number }>();
  /** Refreshes asked for so far: only the last one's answer is listed. */
  private refreshes = 0;
  /** Names of the rooms listed, by id. */
  private readonly names = new Map<string, string>();
  /** Rooms whose missed messages are still being fetched after a failed try. */
  private readonly behind = new Set<string>();

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
    const moreButton = element('button', { className: 'link', text: 'More rooms…' });
    moreButton.type = 'button';
    moreButton.id = 'more-rooms';
    moreButton.addEventListener('click', () => void this.loadMore(), { signal });
    this.more = element('li', {}, [moreButton]);
  }

  async refresh(): Promise<void> {
    const refresh = ++this.refreshes;
    try {
      const page = await this.rest.listRooms({ limit: ROOMS_PAGE });
      // A later refresh (after a removal, perhaps) has the newer list.
      if (this.signal.aborted || refresh !== this.refreshes) return;
      this.forgetLost(page, refresh);
      this.list.replaceChildren();
      this.add(page.items, page.nextCursor);
      this.add(
        [...this.own.values()].map(({ room }) => room),
        page.nextCursor,
      );
    } catch (error) {
      if (!this.signal.aborted && refresh === this.refreshes)
        this.on.error(`Could not load rooms: ${errorText(error)}`);
    }
  }

  /**
   * Own rooms the page should hold and does not are no longer the user's
   * (removed while the page was away): rooms up to its last id, or all when
   * it is the only page. Not those included since the list was asked for.
   */
  private forgetLost(page: { items: RoomJson[]; nextCursor: string | null }, refresh: number) {
    const listed = new Set(page.items.map((room) => room.id));
    const last = page.items.at(-1)?.id;
    for (const [id, { since }] of this.own) {
      const pageHoldsIt = page.nextCursor === null || (last !== undefined && id <= last);
      if (since < refresh && pageHoldsIt && !listed.has(id)) this.own.delete(id);
    }
  }

  /** The next page, below the rooms listed; a refresh meanwhile makes it moot. */
  private async loadMore(): Promise<void> {
    const cursor = this.nextCursor;
    if (cursor === null) return;
    try {
      const page = await this.rest.listRooms({ limit: ROOMS_PAGE, cursor });
      if (!this.signal.aborted && this.nextCursor === cursor) this.add(page.items, page.nextCursor);
    } catch (error) {
      if (!this.signal.aborted) this.on.error(`Could not load rooms: ${errorText(error)}`);
    }
  }

  /** A room of the user's own, listed now and after every refresh. */
  include(room: RoomJson): void {
    this.own.set(room.id, { room, since: this.refreshes });
    this.add([room], this.nextCursor);
  }

  /** No longer the user's room (removed): the next refresh lists it only if it is public. */
  forget(roomId: string): void {
    this.own.delete(roomId);
  }

  /** Signed out: the list, its buttons and a room name being typed go with the user. */
  reset(): void {
    this.selected = undefined;
    this.nextCursor = null;
    this.own.clear();
    this.behind.clear();
    this.list.replaceChildren();
    this.form.reset();
  }

  select(roomId: string | undefined): void {
    this.selected = roomId;
    this.paint();
  }

  /** Marks a room that may lack messages (its catch-up failed and is being tried again), or no longer. */
  markBehind(roomId: string, behind: boolean): void {
    if (behind) this.behind.add(roomId);
    else this.behind.delete(roomId);
    this.paint();
  }

  private paint(): void {
    for (const item of this.list.querySelectorAll<HTMLElement>('li')) {
      const roomId = item.dataset.roomId;
      item.classList.toggle('selected', roomId === this.selected);
      const behind = roomId !== undefined && this.behind.has(roomId);
      item.classList.toggle('behind', behind);
      item.title = behind ? 'Missed messages are still being fetched' : '';
    }
  }

  private async create(): Promise<void> {
    const input = this.form.elements.namedItem('name') as HTMLInputElement;
    const isPrivate = (this.form.elements.namedItem('private') as HTMLInputElement).checked;
    const name = input.value.trim();
    if (!name) return;
    try {
      const room = await this.rest.createRoom({ name, isPrivate });
      // Signed out meanwhile: the page may already belong to the next user.
      if (this.signal.aborted) return;
      this.form.reset();
      this.include(room);
      this.on.open(room);
    } catch (error) {
      if (!this.signal.aborted) this.on.error(`Could not create the room: ${errorText(error)}`);
    }
  }

  private add(rooms: readonly RoomJson[], nextCursor: string | null): void {
    this.more.remove();
    const unlisted = rooms.filter((room) => !this.listed(room.id));
    this.list.append(...unlisted.map((room) => this.item(room)));
    this.nextCursor = nextCursor;
    if (nextCursor !== null) this.list.append(this.more);
    this.select(this.selected);
  }

  private listed(roomId: string): boolean {
    return [...this.list.children].some(
      (item) => item instanceof HTMLElement && item.dataset.roomId === roomId,
    );
  }

  /** The name of a listed room. */
  nameOf(roomId: string): string | undefined {
    return this.names.get(roomId);
  }

  private item(room: RoomJson): HTMLLIElement {
    this.names.set(room.id, room.name);
    const button = element('button', {
      className: room.isPrivate ? 'room private' : 'room',
      text: `# ${room.name}`,
      title: room.isPrivate ? 'Private: only its members see it' : undefined,
    });
    button.type = 'button';
    // The list's "(private)" is drawn by CSS, which screen readers may not say.
    if (room.isPrivate) button.setAttribute('aria-label', `# ${room.name}, private`);
    button.addEventListener('click', () => this.on.open(room));
    return element('li', { data: { roomId: room.id } }, [button]);
  }
}
