import { extractMentions, type MessageJson } from '../../client/src';
import { element, formatTime } from './dom';
import { MAX_SHOWN_MESSAGES } from './limits';

/** Whether `text` mentions `@username`, read exactly as the service reads it to notify. */
export function mentions(text: string, username: string): boolean {
  return extractMentions(text).includes(username.toLowerCase());
}

/**
 * The conversation: stored messages in seq order, older pages prepended
 * without moving what the reader looks at, and the user's own messages shown
 * as pending until the server has stored them.
 */
export class MessagesView {
  private readonly seqs = new Set<number>();
  private oldest: number | undefined;
  /** Where the pages of history reach back to: everything after it, up to the newest page, is shown. */
  private pagedBack: number | undefined;

  constructor(
    private readonly scroller: HTMLElement,
    private readonly list: HTMLOListElement,
    private readonly pendingList: HTMLOListElement,
    private readonly me: string,
    /** Messages were let go of: there are older ones to page in again. */
    private readonly letGo: () => void = () => undefined,
  ) {}

  /**
   * Where the next older page ends: the oldest message of the pages shown.
   * Not the oldest message shown, which may be one of the user's own,
   * acknowledged before the first page came, with messages of others between
   * it and that page.
   */
  get olderPagesBefore(): number | undefined {
    return this.pagedBack;
  }

  reset(): void {
    this.seqs.clear();
    this.oldest = this.pagedBack = undefined;
    this.list.replaceChildren();
    this.pendingList.replaceChildren();
  }

  /**
   * A page of older messages, oldest first; one of the user's still shown as
   * pending is stored. All go before what is shown, but for one of the
   * user's own acknowledged while the page was on its way, which may be
   * older than some of them: then each goes in its place by seq.
   *
   * A page fetched `before` a boundary that has moved meanwhile (messages let
   * go of as newer ones came) is dropped, and false returned: shown, it would
   * leave a hole between it and what is shown now.
   */
  prepend(messages: readonly MessageJson[], before?: number): boolean {
    if (before !== undefined && before !== this.pagedBack) return false;
    if (messages.length > 0) this.pagedBack = Math.min(this.pagedBack ?? Infinity, messages[0].seq);
    for (const message of messages) this.settlePending(message);
    const fresh = messages.filter((m) => !this.seqs.has(m.seq));
    if (fresh.length === 0) return true;
    const heightBefore = this.scroller.scrollHeight;
    const oldestShown = this.oldest;
    if (oldestShown === undefined || fresh.every((m) => m.seq < oldestShown)) {
      this.list.prepend(...fresh.map((m) => this.render(m)));
    } else {
      for (const m of fresh) this.list.insertBefore(this.render(m), this.firstItemAfter(m.seq));
    }
    this.scroller.scrollTop += this.scroller.scrollHeight - heightBefore;
    return true;
  }

  /**
   * A newer message. The SDK delivers them in seq order, but the user's own
   * comes with its ack, which may overtake older messages still being fetched:
   * each goes in its place by seq.
   */
  append(message: MessageJson): void {
    // Also when the history already showed it: its pending copy goes either way.
    this.settlePending(message);
    if (this.seqs.has(message.seq)) return;
    const stickToBottom = this.isNearBottom();
    const next = this.firstItemAfter(message.seq);
    this.list.insertBefore(this.render(message), next);
    if (!stickToBottom) return;
    this.letGoOfOldest();
    this.scrollToBottom();
  }

  addPending(clientMsgId: string, text: string): void {
    const item = element('li', { className: 'message mine pending', data: { clientMsgId } }, [
      element('span', { className: 'author', text: this.me }),
      element('span', { className: 'text', text }),
      element('span', { className: 'meta', text: 'sending…' }),
    ]);
    this.pendingList.append(item);
    this.scrollToBottom();
  }

  failPending(clientMsgId: string, reason: string): void {
    const item = this.pendingItem(clientMsgId);
    if (!item) return;
    item.classList.replace('pending', 'failed');
    item.querySelector('.meta')?.replaceChildren(`not sent: ${reason}`);
  }

  /** The pending copy of a message stored while its conversation was not on screen. */
  dropPending(clientMsgId: string | null): void {
    if (clientMsgId) this.pendingItem(clientMsgId)?.remove();
  }

  /** A message the server acknowledged; the live copy may already have replaced the pending one. */
  confirm(message: MessageJson): void {
    this.append(message);
  }

  scrollToBottom(): void {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  private render(message: MessageJson): HTMLLIElement {
    this.track(message.seq);
    const classes = ['message'];
    if (message.username === this.me) classes.push('mine');
    if (message.username !== this.me && mentions(message.text, this.me)) classes.push('mention');
    return element('li', { className: classes.join(' '), data: { seq: String(message.seq) } }, [
      element('span', { className: 'author', text: message.username }),
      element('span', { className: 'text', text: message.text }),
      element('time', {
        className: 'meta',
        text: formatTime(message.createdAt),
        title: message.createdAt,
      }),
    ]);
  }

  /** Beyond `MAX_SHOWN_MESSAGES`, the oldest go; the next older page starts where they went. */
  private letGoOfOldest(): void {
    let excess = this.list.childElementCount - MAX_SHOWN_MESSAGES;
    if (excess <= 0) return;
    for (; excess > 0; excess -= 1) {
      const oldest = this.list.firstElementChild as HTMLElement;
      this.seqs.delete(Number(oldest.dataset.seq));
      oldest.remove();
    }
    const first = Number((this.list.firstElementChild as HTMLElement).dataset.seq);
    this.oldest = first;
    // Not back to one of the user's own, older than the first page: the pages end where they did.
    this.pagedBack = Math.max(this.pagedBack ?? first, first);
    this.letGo();
  }

  private track(seq: number): void {
    this.seqs.add(seq);
    this.oldest = Math.min(this.oldest ?? seq, seq);
  }

  /** The shown message that follows `seq`, searched from the newest, where it almost always goes. */
  private firstItemAfter(seq: number): HTMLElement | null {
    let after: HTMLElement | null = null;
    for (
      let item = this.list.lastElementChild;
      item instanceof HTMLElement && Number(item.dataset.seq) > seq;
      item = item.previousElementSibling
    ) {
      after = item;
    }
    return after;
  }

  private settlePending(message: MessageJson): void {
    if (message.clientMsgId) this.pendingItem(message.clientMsgId)?.remove();
  }

  private pendingItem(clientMsgId: string): HTMLElement | undefined {
    return [...this.pendingList.children].find(
      (item): item is HTMLElement =>
        item instanceof HTMLElement && item.dataset.clientMsgId === clientMsgId,
    );
  }

  private isNearBottom(): boolean {
    const { scrollTop, scrollHeight, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < 80;
  }
}
