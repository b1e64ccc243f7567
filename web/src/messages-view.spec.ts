/** @jest-environment jsdom */
import { beforeEach, describe, expect, it } from '@jest/globals';
import type { MessageJson } from '../../client/src';
import { storedMessage } from '../../client/src/test-fixtures';
import { MAX_SHOWN_MESSAGES } from './limits';
import { MessagesView } from './messages-view';

const ROOM = '0190b0b0-0000-7000-8000-0000000000aa';

/** A stored message of another user, numbered `seq`. */
function message(seq: number, overrides: Partial<MessageJson> = {}): MessageJson {
  return { ...storedMessage(ROOM, seq), username: 'bob', ...overrides };
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => message(from + i));

describe('MessagesView', () => {
  let scroller: HTMLElement;
  let list: HTMLOListElement;
  let pending: HTMLOListElement;
  let view: MessagesView;
  /** Times the view said older messages can be paged in again. */
  let letGo: number;
  const shownSeqs = () =>
    [...list.children].map((item) => Number((item as HTMLElement).dataset.seq));

  beforeEach(() => {
    scroller = document.createElement('div');
    list = document.createElement('ol');
    pending = document.createElement('ol');
    scroller.append(list, pending);
    letGo = 0;
    view = new MessagesView(scroller, list, pending, 'ada', () => (letGo += 1));
  });

  /** The reader has scrolled far up from the newest messages. */
  function scrolledUp(): void {
    Object.defineProperty(scroller, 'scrollHeight', { value: 10_000, configurable: true });
    Object.defineProperty(scroller, 'clientHeight', { value: 500, configurable: true });
    scroller.scrollTop = 0;
  }

  it('shows each message once, in seq order, the user’s own in its place when it overtakes', () => {
    view.prepend([message(1), message(2)]);
    view.append(message(5));
    view.append(message(3));
    view.append(message(5));
    view.prepend([message(2)]);
    expect(shownSeqs()).toEqual([1, 2, 3, 5]);
  });

  it('shows a message’s text as text, never as markup', () => {
    view.append(message(1, { text: '<img src=x onerror="alert(1)">', username: '<b>eve</b>' }));
    expect(list.querySelector('img, b')).toBeNull();
    expect(list.querySelector('.text')?.textContent).toBe('<img src=x onerror="alert(1)">');
  });

  it('replaces the pending copy of the user’s message when it is stored', () => {
    view.addPending('c1', 'hello');
    view.confirm(message(1, { username: 'ada', text: 'hello', clientMsgId: 'c1' }));
    expect(pending.children).toHaveLength(0);
    expect(shownSeqs()).toEqual([1]);
  });

  it('lets go of the oldest beyond its limit while the reader follows, and pages them back in', () => {
    view.prepend(range(1, 50));
    for (const each of range(51, MAX_SHOWN_MESSAGES + 60)) view.append(each);

    expect(list.children).toHaveLength(MAX_SHOWN_MESSAGES);
    expect(shownSeqs()[0]).toBe(61);
    expect(view.olderPagesBefore).toBe(61);
    expect(letGo).toBe(60);

    view.prepend(range(11, 60));
    expect(shownSeqs().slice(0, 3)).toEqual([11, 12, 13]);
    expect(view.olderPagesBefore).toBe(11);
    // Let go of, they are no longer taken for duplicates.
    expect(list.children).toHaveLength(MAX_SHOWN_MESSAGES + 50);
  });

  it('drops an older page whose boundary moved while it was on its way', () => {
    view.prepend(range(500, 1_499));
    const before = view.olderPagesBefore;
    view.append(message(1_500));
    expect(view.olderPagesBefore).toBe(501);
    expect(view.prepend(range(450, 499), before)).toBe(false);
    expect(shownSeqs()[0]).toBe(501);
    expect(view.prepend(range(451, 500), view.olderPagesBefore)).toBe(true);
    expect(shownSeqs().slice(0, 2)).toEqual([451, 452]);
  });

  it('keeps the pages’ boundary when the oldest shown left is one of the user’s own', () => {
    view.confirm(message(10, { username: 'ada' }));
    view.confirm(message(11, { username: 'ada' }));
    view.prepend(range(22, 71));
    expect(view.olderPagesBefore).toBe(22);
    for (const each of range(72, 71 + MAX_SHOWN_MESSAGES - 51)) view.append(each);
    expect(shownSeqs()[0]).toBe(11);
    expect(view.olderPagesBefore).toBe(22);
  });

  it('keeps every message while the reader is scrolled up among them', () => {
    view.prepend(range(1, MAX_SHOWN_MESSAGES));
    scrolledUp();
    for (const each of range(MAX_SHOWN_MESSAGES + 1, MAX_SHOWN_MESSAGES + 20)) view.append(each);
    expect(list.children).toHaveLength(MAX_SHOWN_MESSAGES + 20);
    expect(view.olderPagesBefore).toBe(1);
    expect(letGo).toBe(0);
  });
});
