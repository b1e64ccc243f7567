import {
  ChatClient,
  ChatError,
  isFinalError,
  newClientMsgId,
  NotificationType,
  type MessageJson,
  type NotificationJson,
  type RestClient,
  type RoomJson,
  type RoomUserEvent,
} from '../../client/src';
import { AddMemberForm } from './add-member-form';
import { ConnectionView } from './connection-view';
import { byId, errorText } from './dom';
import { MessagesView } from './messages-view';
import { PresenceView } from './presence-view';
import { catchUpNotice, invitationNotice, mentionNotice, removalNotice } from './notices';
import { RoomsView } from './rooms-view';
import { loadSession, type Session } from './session';
import { TypingView } from './typing-view';

const HISTORY_PAGE = 50;
/** The title before any room is open, as the page is served. */
const NO_ROOM_TITLE = 'Pick a room';
/** The server allows a few typing events a second; one every 2 s is plenty for the indicator. */
const TYPING_EVERY_MS = 2_000;

/** The signed-in page: rooms, the open conversation, presence and the connection state. */
export class ChatPage {
  private readonly client: ChatClient;
  private readonly connection = new ConnectionView(byId('connection'), byId('retry-now'));
  private readonly messages: MessagesView;
  private readonly presence: PresenceView;
  private readonly typing = new TypingView(byId('typing'));
  private readonly rooms: RoomsView;
  private readonly addMember: AddMemberForm;
  private readonly composer = byId<HTMLFormElement>('composer');
  private readonly loadOlder = byId<HTMLButtonElement>('load-older');
  private readonly unsubscribers: Array<() => void> = [];
  /** Removes every DOM listener of this page at sign-out, so that a new sign-in starts clean. */
  private readonly abort = new AbortController();
  private current: RoomJson | undefined;
  private catchUpNoticeOf: string | undefined;
  /**
   * Counts every conversation shown and closed: work begun for one (its
   * history, an older page) finds out whether that one is still on screen,
   * even when the same room was opened again meanwhile.
   */
  private shown = 0;
  /** The current room's join has been acknowledged: typing events are accepted. */
  private joinedCurrent = false;
  private lastTypingSent = 0;
  /** The `shown` count of the conversation whose older page is being fetched. */
  private loadingOlderOf: number | undefined;
  /** Connected before: a connection now is a comeback, after which the room list may be stale. */
  private connectedBefore = false;

  constructor(
    private readonly session: Session,
    private readonly rest: RestClient,
    private readonly onSignedOut: (reason: string) => void,
  ) {
    // The tab's session as it is now: its token is refreshed while the page runs.
    this.client = new ChatClient({
      url: location.origin,
      token: () => loadSession()?.token ?? session.token,
    });
    this.messages = new MessagesView(
      byId('messages'),
      byId<HTMLOListElement>('message-list'),
      byId<HTMLOListElement>('pending-list'),
      session.username,
      () => (this.loadOlder.hidden = false),
    );
    this.presence = new PresenceView(byId<HTMLUListElement>('presence-list'), session.username);
    this.rooms = new RoomsView(rest, this.abort.signal, {
      open: (room) => void this.open(room),
      error: (message) => this.notice(message),
    });
    this.addMember = new AddMemberForm(rest, session.userId, this.abort.signal, (text) =>
      this.notice(text),
    );
    this.listen();
  }

  start(): void {
    this.notice('');
    byId('chat-view').hidden = false;
    this.client.connect();
    void this.rooms.refresh();
  }

  /**
   * A refused renewal changes nothing: the connection ends when its token
   * expires, and the next one is made with the saved token.
   */
  renewToken(token: string): void {
    this.client.renewToken(token).catch(() => undefined);
  }

  /** Leaves nothing of this user behind for the next: requests still under way find no room. */
  stop(): void {
    this.client.close();
    this.abort.abort();
    this.current = undefined;
    this.shown += 1;
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    this.connection.reset();
    this.rooms.reset();
    this.addMember.show(undefined);
    this.typing.reset();
    this.messages.reset();
    this.presence.replace([]);
    this.composer.reset();
    this.loadOlder.hidden = true;
    this.setComposerEnabled(false);
    this.notice('');
    byId('room-title').textContent = NO_ROOM_TITLE;
    byId('chat-view').hidden = true;
  }

  private listen(): void {
    const client = this.client;
    this.unsubscribers.push(
      client.on('state', (state) => {
        this.connection.render(state);
        // Typing waits for the next join's ack: the server refuses it before.
        if (state.status !== 'connected') this.joinedCurrent = false;
        else this.reconnected();
        if (state.status === 'unauthorized')
          this.onSignedOut('Your session expired: log in again.');
      }),
      client.on('message', (message) => this.received(message)),
      client.on('joined', ({ room }) => {
        this.addMember.roomRead(room);
        this.rejoined(room.id);
      }),
      client.on('userJoined', (event) =>
        this.inCurrentRoom(event, () => this.presence.joined(event.user)),
      ),
      client.on('userLeft', (event) =>
        this.inCurrentRoom(event, () => this.presence.left(event.user)),
      ),
      client.on('typing', (event) =>
        this.inCurrentRoom(event, () => this.someoneTypes(event.user.username)),
      ),
      client.on('roomLost', ({ roomId, error }) => {
        // No longer followed: nothing is being fetched for it.
        this.rooms.markBehind(roomId, false);
        // A server failing on the join is no loss of access: the room stays listed.
        if (!isFinalError(error)) {
          if (roomId === this.current?.id)
            this.closeConversation(`Could not join this room: ${error.message}`);
          return;
        }
        this.dropRoom(roomId);
        if (roomId === this.current?.id)
          this.closeConversation('You no longer have access to this room.');
      }),
      client.on('notification', (notification) => this.notified(notification)),
      client.on('catchUpFailed', ({ roomId, error }) => {
        const notice = catchUpNotice(error, this.rooms.nameOf(roomId));
        if (!notice) return;
        // The notice may be replaced by another; the room's mark stays until it has caught up.
        this.rooms.markBehind(roomId, true);
        this.notice(notice, roomId);
      }),
      client.on('caughtUp', ({ roomId }) => {
        this.rooms.markBehind(roomId, false);
        if (this.catchUpNoticeOf === roomId) this.notice('');
      }),
    );
    const { signal } = this.abort;
    byId('retry-now').addEventListener('click', () => this.client.reconnectNow(), { signal });
    this.composer.addEventListener('submit', (event) => this.submit(event), { signal });
    this.composer.addEventListener('input', () => this.announceTyping(), { signal });
    this.loadOlder.addEventListener('click', () => void this.loadOlderPage(), { signal });
    const scroller = byId('messages');
    scroller.addEventListener(
      'scroll',
      () => {
        if (scroller.scrollTop === 0 && !this.loadOlder.hidden) void this.loadOlderPage();
      },
      { signal },
    );
  }

  /**
   * Shows the newest page from REST, then joins with `since` so that the SDK
   * delivers the rest. The room becomes current at once, so that the room
   * clicked last wins over an open still waiting for its history.
   */
  private async open(room: RoomJson): Promise<void> {
    if (this.abort.signal.aborted || this.current?.id === room.id) return;
    const previous = this.current;
    const shown = this.show(room);
    const stillShown = () => this.shown === shown;
    try {
      // Not awaited: on a slow link its ack would hold the next room's history up.
      if (previous) this.leave(previous.id);
      const page = await this.rest.history(room.id, { limit: HISTORY_PAGE });
      // Another room opened (this one again, perhaps), or a removal closed it, meanwhile.
      if (!stillShown()) return;
      // Listed from now on, even when it came from a page a refresh will not show.
      this.rooms.include(room);
      this.messages.prepend([...page.items].reverse());
      this.loadOlder.hidden = page.nextCursor === null;
      this.messages.scrollToBottom();
      this.setComposerEnabled(true);
      // From the history itself: an own message confirmed meanwhile may be newer
      // than messages of others that only the join will bring.
      await this.client.join(room.id, { since: page.items[0]?.seq ?? 0 });
    } catch (error) {
      // No longer the user's (removed while away): not listed again. A proxy's bare 404 says
      // nothing of the room.
      if (error instanceof ChatError && error.fromService && isFinalError(error.body))
        this.dropRoom(room.id);
      // A join left for another room fails too: only the shown room's failure is news.
      // Closed, the room can be clicked again.
      if (stillShown()) this.closeConversation(`Could not open the room: ${errorText(error)}`);
    }
  }

  /** Invitations and removals sent while the page was away are not sent again: the list is read anew. */
  private reconnected(): void {
    if (this.connectedBefore) void this.rooms.refresh();
    this.connectedBefore = true;
  }

  /** Left for another room: its messages are no longer fetched, nor missing. */
  private leave(roomId: string): void {
    void this.client.leave(roomId);
    this.rooms.markBehind(roomId, false);
  }

  private dropRoom(roomId: string): void {
    this.rooms.forget(roomId);
    void this.rooms.refresh();
  }

  /**
   * An empty conversation for `room`, not yet writable: the history comes
   * first. Messages still queued for it are shown as pending again.
   */
  private show(room: RoomJson): number {
    this.current = room;
    this.joinedCurrent = false;
    this.lastTypingSent = 0;
    this.rooms.select(room.id);
    this.notice('');
    byId('room-title').textContent = `# ${room.name}`;
    this.addMember.show(room);
    this.messages.reset();
    for (const pending of this.client.pendingMessages)
      if (pending.roomId === room.id) this.messages.addPending(pending.clientMsgId, pending.text);
    this.typing.reset();
    this.presence.replace([]);
    this.loadOlder.hidden = true;
    this.setComposerEnabled(false);
    return ++this.shown;
  }

  /** No conversation any more (removed, lost, failed to open); the messages stay on screen. */
  private closeConversation(notice: string): void {
    this.shown += 1;
    this.current = undefined;
    this.joinedCurrent = false;
    this.loadOlder.hidden = true;
    this.rooms.select(undefined);
    this.addMember.show(undefined);
    this.setComposerEnabled(false);
    this.typing.reset();
    this.presence.replace([]);
    this.notice(notice);
  }

  private async loadOlderPage(): Promise<void> {
    const room = this.current;
    const before = this.messages.olderPagesBefore;
    const shown = this.shown;
    if (!room || before === undefined || this.loadingOlderOf === shown) return;
    this.loadingOlderOf = shown;
    try {
      const page = await this.rest.history(room.id, { before, limit: HISTORY_PAGE });
      if (this.shown !== shown) return;
      if (this.messages.prepend([...page.items].reverse(), before))
        this.loadOlder.hidden = page.nextCursor === null;
    } catch (error) {
      if (this.shown === shown) this.notice(`Could not load older messages: ${errorText(error)}`);
    } finally {
      if (this.loadingOlderOf === shown) this.loadingOlderOf = undefined;
    }
  }

  private received(message: MessageJson): void {
    if (message.roomId !== this.current?.id) return;
    this.typing.stopped(message.username);
    this.messages.append(message);
  }

  /** Presence is per node and per connection: ask again after every (re)join. */
  private rejoined(roomId: string): void {
    if (roomId !== this.current?.id) return;
    this.joinedCurrent = true;
    this.client.presence(roomId).then(
      (users) => roomId === this.current?.id && this.presence.replace(users),
      () => undefined,
    );
  }

  private submit(event: SubmitEvent): void {
    event.preventDefault();
    const input = this.composer.elements.namedItem('text') as HTMLInputElement;
    const text = input.value.trim();
    const room = this.current;
    if (!text || !room) return;
    input.value = '';
    const clientMsgId = newClientMsgId();
    this.messages.addPending(clientMsgId, text);
    this.client.send(room.id, text, { clientMsgId }).then(
      (message) => this.sent(room, message),
      (error: unknown) => this.notSent(room, clientMsgId, errorText(error)),
    );
  }

  /** Shown in its place; a conversation closed meanwhile only loses the pending copy. */
  private sent(room: RoomJson, message: MessageJson): void {
    if (this.stopped) return;
    if (this.current?.id === room.id) this.messages.confirm(message);
    else this.messages.dropPending(message.clientMsgId);
  }

  /** Signed out meanwhile: what the previous user's requests answer is not shown to the next. */
  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /**
   * Shown where the message was, also in a conversation closed meanwhile, and,
   * when another room is open, as a notice.
   */
  private notSent(room: RoomJson, clientMsgId: string, reason: string): void {
    if (this.stopped) return;
    this.messages.failPending(clientMsgId, reason);
    if (this.current?.id !== room.id)
      this.notice(`A message to # ${room.name} was not sent: ${reason}`);
  }

  /** Only once joined: before its ack the server refuses typing in the room. */
  private announceTyping(): void {
    const now = Date.now();
    if (!this.current || !this.joinedCurrent || now - this.lastTypingSent < TYPING_EVERY_MS) return;
    this.lastTypingSent = now;
    this.client.typing(this.current.id);
  }

  /**
   * Invited: the room is listed. Mentioned in another room: a notice (the
   * open conversation highlights it). Removed: the SDK has left the room; the
   * page stops the conversation and lists rooms anew.
   */
  private notified(notification: NotificationJson): void {
    if (notification.type === NotificationType.Mention) {
      const { message } = notification;
      if (message.roomId === this.current?.id || message.username === this.session.username) return;
      this.notice(mentionNotice(message.username, this.rooms.nameOf(message.roomId)));
      return;
    }
    if (notification.type === NotificationType.RoomInvited) {
      const { room, by } = notification;
      this.rooms.include(room);
      this.notice(invitationNotice(room.name, by.username));
      return;
    }
    if (notification.type !== NotificationType.RoomRemoved) return;
    const { room, by } = notification;
    this.dropRoom(room.id);
    if (room.id !== this.current?.id) return;
    this.closeConversation(removalNotice(room.name, by?.username, this.session.username));
  }

  private inCurrentRoom(event: RoomUserEvent, update: () => void): void {
    if (event.roomId === this.current?.id) update();
  }

  private someoneTypes(username: string): void {
    if (username !== this.session.username) this.typing.typing(username);
  }

  private setComposerEnabled(enabled: boolean): void {
    for (const control of this.composer.querySelectorAll<HTMLInputElement | HTMLButtonElement>(
      'input, button',
    )) {
      control.disabled = !enabled;
    }
  }

  /** `catchUpOf`: the room whose failed catch-up the notice tells, cleared once it has caught up. */
  private notice(message: string, catchUpOf?: string): void {
    byId('notice').textContent = message;
    this.catchUpNoticeOf = catchUpOf;
  }
}
