import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Page,
  type Route,
} from 'playwright-core';
import {
  addMember,
  postMessage,
  registerUser,
  removeMember,
  uniqueUsername,
  type TestUser,
} from '../support/api';
import { MAX_SHOWN_MESSAGES } from '../../web/src/limits';
import { runsUnderCi } from '../support/ci';
import { REPO_ROOT } from '../support/service-process';
import { fullHistory, RestartableService, waitFor } from '../sdk/sdk-harness';
import { eventually } from '../support/sockets';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
const PAGE_BUILD = join(REPO_ROOT, 'dist', 'web', 'index.html');
const SCREENSHOT = join(REPO_ROOT, 'artifacts', 'chat-page.png');
const PASSWORD = 'password-123';
/** Generous: a loaded 2-core machine runs a browser, a service and Jest at once. */
const UI_TIMEOUT_MS = 30_000;

/** What a join's ack brings at most: more is paged from REST. */
const TRUNCATED_JOIN = 1_000;
const POST_BATCH = 20;
/** The rooms the page lists at once. */
const ROOMS_PAGE = 100;
/** Long enough for a late answer to a superseded request to reach the page. */
const SETTLE_MS = 1_000;

jest.setTimeout(240_000);

/** Without Chromium the suite may skip locally, never under CI. */
function browserAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `${CHROMIUM} is missing: install it with "apt-get install -y chromium"`;
  if (runsUnderCi()) throw new Error(`${message} (required under CI)`);
  console.warn(`${message}; skipping the chat page test.`);
  return false;
}

const describeWithBrowser = browserAvailable() ? describe : describe.skip;

describeWithBrowser('the chat page in Chromium', () => {
  let service: RestartableService;
  let browser: Browser;
  /** What the browser reported the page's Content-Security-Policy blocked. */
  const blockedByPolicy: string[] = [];

  beforeAll(async () => {
    if (!existsSync(PAGE_BUILD)) throw new Error(`${PAGE_BUILD} is missing: run "npm run build"`);
    service = await RestartableService.start();
    await expectPageServed(service.url);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    await service?.dispose();
  });

  /** Closed after each test: pages left connected would all reconnect at every restart after. */
  const contexts: BrowserContext[] = [];
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  });

  async function openPage(
    url = service.url,
    beforeLoading: (page: Page) => Promise<void> = () => Promise.resolve(),
  ): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) blockedByPolicy.push(message.text());
    });
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    await beforeLoading(page);
    await page.goto(url);
    return page;
  }

  async function register(page: Page, username: string): Promise<void> {
    await page.fill('#auth-form [name=username]', username);
    await page.fill('#auth-form [name=password]', PASSWORD);
    await page.click('#register');
    await page.waitForSelector('#chat-view', { state: 'visible' });
    await expectConnected(page);
  }

  async function logIn(page: Page, username: string): Promise<void> {
    await page.fill('#auth-form [name=username]', username);
    await page.fill('#auth-form [name=password]', PASSWORD);
    await page.click('#login');
    await expectConnected(page);
  }

  /** Asks to connect at once; the page may have done so by itself, and hidden the button. */
  const retryNow = (page: Page) =>
    page.$eval('#retry-now', (button) => (button as { click(): void }).click());

  const expectConnected = (page: Page) =>
    page.waitForSelector('#connection[data-status=connected]');

  /**
   * A page whose Socket.IO frames from the server that mention `text` (a
   * message's ack, its live copy) are held back, each until its release.
   */
  async function openPageHoldingBack(
    text: string,
  ): Promise<{ page: Page; heldBack: Array<() => void> }> {
    const heldBack: Array<() => void> = [];
    const page = await openPage(service.url, (opened) =>
      opened.routeWebSocket(/\/socket\.io\//, (client) => {
        const server = client.connectToServer();
        client.onMessage((frame) => server.send(frame));
        server.onMessage((frame) => {
          if (typeof frame === 'string' && frame.includes(text))
            heldBack.push(() => client.send(frame));
          else client.send(frame);
        });
      }),
    );
    return { page, heldBack };
  }

  /** A page whose Socket.IO connections the test can cut, and keep refused, until it restores them. */
  async function openPageWithCuttableSocket() {
    let cut = false;
    const open: Array<() => void> = [];
    const page = await openPage(service.url, (opened) =>
      opened.routeWebSocket(/\/socket\.io\//, (client) => {
        if (cut) return void client.close();
        const server = client.connectToServer();
        client.onMessage((frame) => server.send(frame));
        server.onMessage((frame) => client.send(frame));
        open.push(() => {
          void server.close();
          void client.close();
        });
      }),
    );
    return {
      page,
      cut: () => {
        cut = true;
        for (const close of open.splice(0)) close();
      },
      restore: () => (cut = false),
    };
  }

  async function openRoom(page: Page, name: string, { refresh = true } = {}): Promise<void> {
    if (refresh) await page.click('#refresh-rooms');
    await page.click(`#room-list button:text-is("# ${name}")`);
    await page.waitForSelector(`#room-title:text-is("# ${name}")`);
    await page.waitForSelector('#composer input:not([disabled])');
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.fill('#composer [name=text]', text);
    await page.press('#composer [name=text]', 'Enter');
  }

  const messageWithText = (text: string) => `#message-list .message:has(.text:text-is("${text}"))`;
  const pendingWithText = (text: string) => `#pending-list .message:has(.text:text-is("${text}"))`;

  const seqsShown = (page: Page) =>
    page.$$eval('#message-list .message', (items) =>
      items.map((item) => Number(item.getAttribute('data-seq'))),
    );

  it('two users chat, see presence and typing, and come back by themselves after a restart', async () => {
    const [adaName, bobName] = [uniqueUsername('ada'), uniqueUsername('bob')];
    const [ada, bob] = [await openPage(), await openPage()];
    await register(ada, adaName);
    await register(bob, bobName);

    await ada.fill('#create-room [name=name]', 'lobby');
    await ada.click('#create-room button');
    await ada.waitForSelector('#room-title:text-is("# lobby")');
    await openRoom(bob, 'lobby');

    await ada.waitForSelector(`#presence-list li:text-is("${bobName}")`);
    await bob.waitForSelector(`#presence-list li:text-is("${adaName}")`);

    await ada.type('#composer [name=text]', 'hel');
    await bob.waitForSelector(`#typing:text-is("${adaName} is typing…")`);
    await ada.fill('#composer [name=text]', '');
    // A trailing full stop is punctuation: the service notifies bob, and the page highlights it.
    await send(ada, `hello @${bobName}.`);
    await bob.waitForSelector(`${messageWithText(`hello @${bobName}.`)}.mention`);
    await ada.waitForSelector(`${messageWithText(`hello @${bobName}.`)}.mine`);
    await bob.waitForSelector('#typing:text-is("")');
    await send(bob, 'hi ada');
    await ada.waitForSelector(messageWithText('hi ada'));

    // A crash: both pages notice and count down to their next attempt.
    const carol = await registerUser(service.url, uniqueUsername('carol'));
    await service.kill();
    await ada.waitForSelector('#connection[data-status=reconnecting]');
    await bob.waitForSelector('#connection[data-status=reconnecting]');
    await ada.waitForSelector('#connection:has-text("Reconnecting in")');

    await service.start();
    const roomId = await ada.$eval('#room-list li.selected', (li) =>
      li.getAttribute('data-room-id'),
    );
    await postMessage(service.url, carol, roomId as string, 'posted while you were away');
    await Promise.all([expectConnected(ada), expectConnected(bob)]);
    await ada.waitForSelector(messageWithText('posted while you were away'));
    await bob.waitForSelector(messageWithText('posted while you were away'));

    await send(ada, 'after the restart');
    await bob.waitForSelector(messageWithText('after the restart'));
    await bob.waitForSelector(`#presence-list li:text-is("${adaName}")`);

    const history = await fullHistory(service.url, carol.token, roomId as string);
    const expected = history.map((m) => m.seq);
    expect(await seqsShown(ada)).toEqual(expected);
    expect(await seqsShown(bob)).toEqual(expected);

    mkdirSync(join(REPO_ROOT, 'artifacts'), { recursive: true });
    await bob.screenshot({ path: SCREENSHOT });
  });

  it('refreshes its token halfway through its life, and ends the session the server will not refresh', async () => {
    const kim = await registerUser(service.url, uniqueUsername('kim'));
    // Tokens said to live 10 s: the page refreshes 5 s on.
    const shortLived = async (route: Route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { expiresIn: number };
      return route.fulfill({ response, json: { ...body, expiresIn: 10 } });
    };
    const refreshes: string[] = [];
    const socketFrames: string[] = [];
    let refusing = false;
    const page = await openPage(service.url, async (p) => {
      p.on('websocket', (socket) => {
        socket.on('framesent', ({ payload }) => socketFrames.push(`sent ${String(payload)}`));
        socket.on('framereceived', ({ payload }) => socketFrames.push(`got ${String(payload)}`));
      });
      await p.route('**/api/auth/login', shortLived);
      await p.route('**/api/auth/refresh', async (route) => {
        refreshes.push(route.request().headers().authorization ?? '');
        if (!refusing) return shortLived(route);
        return route.fulfill({
          status: 401,
          json: { code: 'UNAUTHORIZED', message: 'Session expired: log in again', details: [] },
        });
      });
    });
    await logIn(page, kim.username);
    const tokenInTab = () =>
      page.evaluate<string>(
        `JSON.parse(sessionStorage.getItem('realtime-chat.session') ?? '{}').token`,
      );
    const first = await tokenInTab();

    await eventually(() => refreshes.length === 1, 15_000);
    expect(refreshes[0]).toBe(`Bearer ${first}`);
    await eventually(async () => (await tokenInTab()) !== first, 5_000);
    // What the page sends from now on carries the new token.
    const used = page.waitForRequest('**/api/rooms?**');
    await page.click('#refresh-rooms');
    const fresh = await tokenInTab();
    expect((await used).headers().authorization).toBe(`Bearer ${fresh}`);
    // The live connection is handed the new token too, and takes it: it outlives the first.
    const renewal = /^sent 42(\d+)\["auth:renew",\{"token":"([^"]+)"\}\]$/;
    await eventually(() => socketFrames.some((frame) => renewal.test(frame)), 5_000);
    const [, ackId, renewedWith] = socketFrames
      .find((frame) => renewal.test(frame))!
      .match(renewal)!;
    expect(renewedWith).toBe(fresh);
    await eventually(
      () => socketFrames.some((frame) => frame.startsWith(`got 43${ackId}[{"ok":true`)),
      5_000,
    );

    refusing = true;
    await page.waitForSelector('#auth-form', { state: 'visible', timeout: 15_000 });
    expect(await page.textContent('#auth-error')).toBe('Your session expired: log in again.');
    expect(refreshes).toHaveLength(2);
  }, 60_000);

  it('scrolls back through older history page by page', async () => {
    const dan = await registerUser(service.url, uniqueUsername('dan'));
    const roomId = await createRoomAs(dan.token, 'archive');
    for (let i = 1; i <= 120; i += 1) await postMessage(service.url, dan, roomId, `old ${i}`);

    const page = await openPage();
    await logIn(page, dan.username);
    await openRoom(page, 'archive');
    await page.waitForSelector(messageWithText('old 120'));
    expect(await seqsShown(page)).toEqual(range(71, 120));

    // Scrolling to the top brings the previous page, without moving what the reader looks at.
    await page.$eval('#messages', (scroller) => scroller.scrollTo({ top: 0 }));
    await page.waitForSelector(messageWithText('old 21'));
    expect(await seqsShown(page)).toEqual(range(21, 120));
    expect(await page.$eval('#messages', (scroller) => scroller.scrollTop)).toBeGreaterThan(0);

    // The button does the same without scrolling (a click that scrolled would load by itself).
    await page.locator('#load-older').dispatchEvent('click');
    await page.waitForSelector(messageWithText('old 1'));
    expect(await seqsShown(page)).toEqual(range(1, 120));
    await page.waitForSelector('#load-older', { state: 'hidden' });
  });

  it('closes the conversation of a member removed from a private room, and drops it from the list', async () => {
    const { owner, member, roomId, page } = await memberLookingAtPrivateRoom('inner circle');

    await removeMember(service.url, owner, roomId, member.id);
    await expectConversationClosed(
      page,
      'inner circle',
      `${owner.username} removed you from # inner circle.`,
    );
  });

  it('leaves nothing of the signed-out user to the next one', async () => {
    const [alice, bob] = [
      await registerUser(service.url, uniqueUsername('alice')),
      await registerUser(service.url, uniqueUsername('bob')),
    ];
    const aliceRoom = await createRoomAs(alice.token, 'alice only', true);
    await postMany(alice, aliceRoom, 60);
    await createRoomAs(bob.token, 'open to all');
    const page = await openPage();
    await logIn(page, alice.username);
    await openRoom(page, 'alice only');
    // A page of history with more behind it, and a draft.
    await page.waitForSelector('#load-older', { state: 'visible' });
    await page.fill('#composer input[name="text"]', 'a draft of alice');

    await page.click('#logout');
    await page.waitForSelector('#auth-form', { state: 'visible' });
    expect(await page.isHidden('#retry-now')).toBe(true);
    await logIn(page, bob.username);
    expect(await page.textContent('#room-title')).toBe('Pick a room');
    expect(await page.isHidden('#load-older')).toBe(true);
    expect(await page.inputValue('#composer input[name="text"]')).toBe('');
    await page.click('#refresh-rooms');
    await page.waitForSelector('#room-list button:text-is("# open to all")');
    expect(
      await page.$$eval('#room-list button', (buttons) => buttons.map((b) => b.textContent)),
    ).not.toContain('# alice only');
    await page.waitForSelector('#composer input[disabled]');
  });

  it('keeps the conversation in seq order when the own message is stored before older ones arrive', async () => {
    const [dan, eve] = [
      await registerUser(service.url, uniqueUsername('dan')),
      await registerUser(service.url, uniqueUsername('eve')),
    ];
    const roomId = await createRoomAs(eve.token, 'busy');
    const page = await openPage();
    await logIn(page, dan.username);
    // The newest page is read while the room is still empty but answered only after a burst,
    // so the join's ack is truncated; the rest, fetched from REST, is held back meanwhile.
    const newestPageAnswered = gate();
    const restOfBurstAnswered = gate();
    await page.route(`**/api/rooms/${roomId}/messages?**`, async (route) => {
      if (route.request().url().includes('since=')) {
        await restOfBurstAnswered.opened;
        return route.continue();
      }
      const response = await route.fetch();
      await newestPageAnswered.opened;
      return route.fulfill({ response });
    });
    await page.click('#refresh-rooms');
    await page.click('#room-list button:text-is("# busy")');
    await postMany(eve, roomId, TRUNCATED_JOIN + 10);
    newestPageAnswered.open();
    await page.waitForSelector(`#message-list .message[data-seq="${TRUNCATED_JOIN}"]`);

    await send(page, 'dan is here');
    await page.waitForSelector(`${messageWithText('dan is here')}.mine`);
    restOfBurstAnswered.open();
    await page.waitForSelector(`#message-list .message[data-seq="${TRUNCATED_JOIN + 10}"]`);
    // In seq order; past the page's limit the oldest were let go, to be paged in again.
    const newest = TRUNCATED_JOIN + 11;
    expect(await seqsShown(page)).toEqual(range(newest - MAX_SHOWN_MESSAGES + 1, newest));
    await page.waitForSelector('#load-older', { state: 'visible' });
  });

  it('shows the room clicked last when rooms are clicked in quick succession', async () => {
    const dan = await registerUser(service.url, uniqueUsername('dan'));
    for (const name of ['first', 'second', 'third']) await createRoomAs(dan.token, name);
    const page = await openPage();
    await logIn(page, dan.username);
    await openRoom(page, 'first');

    // Both clicks before the leave of the first room is answered.
    await page.$$eval('#room-list button', (buttons) => {
      for (const name of ['# second', '# third']) {
        buttons.find((button) => button.textContent === name)?.click();
      }
    });
    await page.waitForSelector('#composer input:not([disabled])');
    await page.waitForTimeout(SETTLE_MS);
    expect(await page.textContent('#room-title')).toBe('# third');
    expect(await page.textContent('#room-list li.selected')).toBe('# third');
    await send(page, 'in the third room');
    await page.waitForSelector(messageWithText('in the third room'));
  });

  it('opens nothing for the next user of a room whose creation was under way at sign-out', async () => {
    const [alice, bob] = [
      await registerUser(service.url, uniqueUsername('alice')),
      await registerUser(service.url, uniqueUsername('bob')),
    ];
    const page = await openPage();
    await logIn(page, alice.username);
    const creationAnswered = gate();
    await page.route('**/api/rooms', async (route) => {
      if (route.request().method() === 'POST') await creationAnswered.opened;
      return route.continue();
    });
    await page.fill('#create-room [name=name]', 'alice secret plans');
    await page.click('#create-room button');
    await page.click('#logout');
    await page.waitForSelector('#auth-form', { state: 'visible' });
    await logIn(page, bob.username);

    const created = page.waitForResponse((response) => response.request().method() === 'POST');
    creationAnswered.open();
    await created;
    await page.waitForTimeout(SETTLE_MS);
    expect(await page.textContent('#room-title')).toBe('Pick a room');
    expect(await page.textContent('#notice')).toBe('');
    expect(await page.inputValue('#create-room [name=name]')).toBe('');
  });

  it('lists the rooms after the first page on demand, and a room it creates at once', async () => {
    // A service of its own: the other tests list their rooms on the first page.
    const crowded = await RestartableService.start();
    try {
      const frank = await registerUser(crowded.url, uniqueUsername('frank'));
      for (let made = 0; made < ROOMS_PAGE; made += POST_BATCH) {
        const names = range(made + 1, Math.min(ROOMS_PAGE, made + POST_BATCH));
        await Promise.all(
          names.map((n) => createRoomAs(frank.token, `filler ${n}`, false, crowded.url)),
        );
      }
      await createRoomAs(frank.token, 'newest of all', false, crowded.url);
      const page = await openPage(crowded.url);
      await logIn(page, frank.username);

      await page.waitForSelector('#more-rooms');
      expect(await page.isVisible('#room-list button:text-is("# newest of all")')).toBe(false);
      await page.click('#more-rooms');
      await openRoom(page, 'newest of all', { refresh: false });

      await page.fill('#create-room [name=name]', 'made on the page');
      await page.click('#create-room button');
      await page.waitForSelector('#room-list li.selected button:text-is("# made on the page")');
      await page.click('#refresh-rooms');
      await page.waitForSelector('#more-rooms');
      await page.waitForSelector('#room-list li.selected button:text-is("# made on the page")');
    } finally {
      await crowded.dispose();
    }
  });

  it('creates a private room and adds someone to it by name, who is told and may open it', async () => {
    const [owner, hana] = [uniqueUsername('owner'), uniqueUsername('hana')];
    const ownerPage = await openPage();
    await register(ownerPage, owner);
    const hanaPage = await openPage();
    await register(hanaPage, hana);

    await ownerPage.fill('#create-room [name=name]', 'back office');
    await ownerPage.check('#create-room [name=private]');
    await ownerPage.click('#create-room button[type=submit]');
    await ownerPage.waitForSelector('#room-title:text-is("# back office")');
    await ownerPage.waitForSelector('#room-list button.private:text-is("# back office")');
    expect(await ownerPage.isChecked('#create-room [name=private]')).toBe(false);

    await ownerPage.fill('#add-member [name=username]', 'nobody_by_that_name');
    await ownerPage.click('#add-member button[type=submit]');
    await ownerPage.waitForSelector(
      '#notice:text-is("Could not add nobody_by_that_name: User not found")',
    );
    await ownerPage.fill('#add-member [name=username]', hana.toUpperCase());
    await ownerPage.click('#add-member button[type=submit]');
    await ownerPage.waitForSelector(`#notice:text-is("Added ${hana} to # back office.")`);

    await hanaPage.waitForSelector(`#notice:text-is("${owner} added you to # back office.")`);
    await openRoom(hanaPage, 'back office', { refresh: false });
    // Only its owner adds to a private room.
    expect(await hanaPage.isHidden('#add-member')).toBe(true);
    expect(await ownerPage.isVisible('#add-member')).toBe(true);
  });

  it('offers the Add form in a private room to whom it passed when its owner left', async () => {
    const [owner, ines] = [
      await registerUser(service.url, uniqueUsername('owner')),
      await registerUser(service.url, uniqueUsername('ines')),
    ];
    const roomId = await createRoomAs(owner.token, 'handed over', true);
    await createRoomAs(owner.token, 'elsewhere');
    await addMember(service.url, owner, roomId, ines.id);
    const page = await openPage();
    await logIn(page, ines.username);
    await openRoom(page, 'handed over');
    expect(await page.isHidden('#add-member')).toBe(true);

    await removeMember(service.url, owner, roomId, owner.id);
    // The list still says the room is the old owner's; opening it again reads who owns it now.
    await openRoom(page, 'elsewhere', { refresh: false });
    await openRoom(page, 'handed over', { refresh: false });
    await page.waitForSelector('#add-member', { state: 'visible' });
  });

  it('lists a room the user is invited to, and says who invited them', async () => {
    const [owner, gina] = [
      await registerUser(service.url, uniqueUsername('owner')),
      await registerUser(service.url, uniqueUsername('gina')),
    ];
    const page = await openPage();
    await logIn(page, gina.username);
    const roomId = await createRoomAs(owner.token, 'by invitation', true);

    await addMember(service.url, owner, roomId, gina.id);
    await page.waitForSelector(
      `#notice:text-is("${owner.username} added you to # by invitation.")`,
    );
    await openRoom(page, 'by invitation', { refresh: false });
  });

  /**
   * A user's message written into `room` while the service is down; the page
   * then tries `other` and `room` again, neither of which it can open: the
   * message is pending in a closed conversation.
   */
  async function pendingThroughAnOutage(name: string, room: string, other: string, text: string) {
    const user = await registerUser(service.url, uniqueUsername(name));
    const roomId = await createRoomAs(user.token, room);
    await createRoomAs(user.token, other);
    const page = await openPage();
    await logIn(page, user.username);
    await openRoom(page, room);
    const pending = pendingWithText(text);

    await service.kill();
    await page.waitForSelector('#connection[data-status=reconnecting]');
    await send(page, text);
    await page.waitForSelector(pending);
    await page.click(`#room-list button:text-is("# ${other}")`);
    await page.waitForSelector('#notice:has-text("Could not open the room")');
    await page.click(`#room-list button:text-is("# ${room}")`);
    await page.waitForSelector(`#room-title:text-is("# ${room}")`);
    await page.waitForSelector(pending);
    await page.waitForSelector('#notice:has-text("Could not open the room")');
    return { user, roomId, page, pending };
  }

  it('keeps messages queued offline on screen across room switches, and opens a room again after a failed try', async () => {
    const {
      user: hank,
      roomId,
      page,
      pending,
    } = await pendingThroughAnOutage('hank', 'first stop', 'second stop', 'written offline');

    await service.start();
    await expectConnected(page);
    await openRoom(page, 'first stop', { refresh: false });
    await page.waitForSelector(messageWithText('written offline'));
    await page.waitForSelector(pending, { state: 'detached' });
    expect(await page.locator(messageWithText('written offline')).count()).toBe(1);
    const stored = await fullHistory(service.url, hank.token, roomId);
    expect(stored.map((m) => m.text)).toEqual(['written offline']);
  });

  it('shows a message whose ack is still on its way once, not as pending, after a switch of rooms', async () => {
    const kim = await registerUser(service.url, uniqueUsername('kim'));
    const roomId = await createRoomAs(kim.token, 'acked late');
    await createRoomAs(kim.token, 'meanwhile');
    const text = 'stored, ack on its way';
    const { page, heldBack } = await openPageHoldingBack(text);
    await logIn(page, kim.username);
    await openRoom(page, 'acked late');
    await send(page, text);
    await waitFor('the message stored', () => heldBack.length > 0);

    await openRoom(page, 'meanwhile', { refresh: false });
    await openRoom(page, 'acked late', { refresh: false });
    await page.waitForSelector(messageWithText(text));
    await page.waitForSelector(pendingWithText(text), { state: 'detached' });
    for (const release of heldBack.splice(0)) release();
    await page.waitForTimeout(SETTLE_MS);
    expect(await page.locator(messageWithText(text)).count()).toBe(1);
    expect(await page.locator(pendingWithText(text)).count()).toBe(0);
    expect((await fullHistory(service.url, kim.token, roomId)).map((m) => m.text)).toEqual([text]);
  });

  it('pages back from the oldest message of history, not from an own one acknowledged before it', async () => {
    const [kim, eve] = [
      await registerUser(service.url, uniqueUsername('kim')),
      await registerUser(service.url, uniqueUsername('eve')),
    ];
    const roomId = await createRoomAs(kim.token, 'gap');
    await addMember(service.url, kim, roomId, eve.id);
    await createRoomAs(kim.token, 'aside');
    const text = 'acked into an empty conversation';
    const { page, heldBack } = await openPageHoldingBack(text);
    await logIn(page, kim.username);
    await openRoom(page, 'gap');
    await send(page, text);
    await waitFor('the message stored', () => heldBack.length > 0);
    await openRoom(page, 'aside', { refresh: false });
    // The room opens again with its history held back; the ack comes meanwhile, and then
    // more than a page of others' messages, so that the newest page starts well after it.
    const historyAsked = gate();
    await page.route(`**/api/rooms/${roomId}/messages?**`, async (route) => {
      if (!route.request().url().includes('before=')) await historyAsked.opened;
      return route.continue();
    });
    await page.click('#room-list button:text-is("# gap")');
    await page.waitForSelector('#room-title:text-is("# gap")');
    for (const release of heldBack.splice(0)) release();
    await page.waitForSelector(messageWithText(text));
    await postMany(eve, roomId, 60);
    historyAsked.open();
    await page.waitForSelector('#message-list .message[data-seq="61"]');
    expect(await seqsShown(page)).toEqual([1, ...range(12, 61)]);

    await page.locator('#load-older').dispatchEvent('click');
    await page.waitForSelector('#message-list .message[data-seq="11"]');
    expect(await seqsShown(page)).toEqual(range(1, 61));
  });

  it('shows a room opened, left and opened again in seq order, from the last opening only', async () => {
    const ivy = await registerUser(service.url, uniqueUsername('ivy'));
    const roomId = await createRoomAs(ivy.token, 'back again');
    await createRoomAs(ivy.token, 'elsewhere');
    for (let n = 1; n <= 3; n += 1) await postMessage(service.url, ivy, roomId, `early ${n}`);
    const page = await openPage();
    await logIn(page, ivy.username);
    const answers = [gate(), gate()];
    let reads = 0;
    await page.route(`**/api/rooms/${roomId}/messages?**`, async (route) => {
      if (route.request().url().includes('since=')) return route.continue();
      const answer = answers[reads++];
      const response = await route.fetch();
      await answer.opened;
      return route.fulfill({ response });
    });

    await page.click('#refresh-rooms');
    await page.click('#room-list button:text-is("# back again")');
    await waitFor('the first read', () => reads === 1);
    await openRoom(page, 'elsewhere', { refresh: false });
    for (let n = 4; n <= 5; n += 1) await postMessage(service.url, ivy, roomId, `late ${n}`);
    await page.click('#room-list button:text-is("# back again")');
    await waitFor('the second read', () => reads === 2);
    // The stale page first, and the fresh one before the stale open's join could bring 4 and 5.
    answers[0].open();
    answers[1].open();

    await page.waitForSelector(messageWithText('late 5'));
    await page.waitForTimeout(SETTLE_MS);
    expect(await seqsShown(page)).toEqual(range(1, 5));
  });

  it('closes the conversation of a room the user lost while disconnected', async () => {
    const { member, roomId, page } = await memberLookingAtPrivateRoom('lost in the outage', 60);
    await page.waitForSelector('#load-older', { state: 'visible' });

    // Removed while the service was down: no notification, only the re-join's refusal says so.
    await service.kill();
    removeMembershipInStore(service.sqlitePath, roomId, member.id);
    await service.start();

    await expectConversationClosed(
      page,
      'lost in the outage',
      'You no longer have access to this room.',
    );
    expect(await page.isHidden('#load-older')).toBe(true);
  });

  /** A private room of a new owner, with `messages` of theirs, and a new member of it looking at it in a page. */
  async function memberLookingAtPrivateRoom(name: string, messages = 0) {
    const [owner, member] = [
      await registerUser(service.url, uniqueUsername('owner')),
      await registerUser(service.url, uniqueUsername('member')),
    ];
    const roomId = await createRoomAs(owner.token, name, true);
    await postMany(owner, roomId, messages);
    await addMember(service.url, owner, roomId, member.id);
    const page = await openPage();
    await logIn(page, member.username);
    await openRoom(page, name);
    return { owner, member, roomId, page };
  }

  /** The page says why, takes the composer away and no longer lists the room. */
  async function expectConversationClosed(page: Page, name: string, notice: string) {
    await page.waitForSelector(`#notice:text-is("${notice}")`);
    await page.waitForSelector('#composer input[disabled]');
    await page.waitForSelector(`#room-list button:text-is("# ${name}")`, { state: 'detached' });
  }

  it('shows the login form only once its script runs, and would post it rather than put it in a URL', async () => {
    const script = gate();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.route(/\/assets\/.*\.js$/, async (route) => {
        await script.opened;
        await route.continue();
      });
      await page.goto(service.url, { waitUntil: 'commit' });
      await page.waitForSelector('#auth-form', { state: 'attached' });
      // Before the script: nothing to type a password into, and a form that would be posted.
      expect(await page.isHidden('#auth-view')).toBe(true);
      expect(await page.getAttribute('#auth-form', 'method')).toBe('post');
      script.open();
      await page.waitForSelector('#auth-form', { state: 'visible' });
    } finally {
      script.open();
      await context.close();
    }
  });

  it('lists a room the user was invited to while disconnected, once connected again', async () => {
    const [owner, ivy] = [
      await registerUser(service.url, uniqueUsername('owner')),
      await registerUser(service.url, uniqueUsername('ivy')),
    ];
    const { page, cut, restore } = await openPageWithCuttableSocket();
    await logIn(page, ivy.username);
    cut();
    await page.waitForSelector('#connection[data-status=reconnecting]');
    const roomId = await createRoomAs(owner.token, 'while away', true);
    await addMember(service.url, owner, roomId, ivy.id);

    restore();
    await retryNow(page);
    await expectConnected(page);
    await page.waitForSelector('#room-list button:text-is("# while away")');
  });

  it('no longer lists a room opened earlier that the user was removed from while disconnected', async () => {
    const [owner, joe] = [
      await registerUser(service.url, uniqueUsername('owner')),
      await registerUser(service.url, uniqueUsername('joe')),
    ];
    const privateId = await createRoomAs(owner.token, 'was mine', true);
    await addMember(service.url, owner, privateId, joe.id);
    await createRoomAs(owner.token, 'still open');
    const { page, cut, restore } = await openPageWithCuttableSocket();
    await logIn(page, joe.username);
    await openRoom(page, 'was mine');
    await openRoom(page, 'still open');

    cut();
    await page.waitForSelector('#connection[data-status=reconnecting]');
    await removeMember(service.url, owner, privateId, joe.id);
    restore();
    await retryNow(page);
    await expectConnected(page);
    await page.waitForSelector('#room-list button:text-is("# was mine")', { state: 'detached' });
    expect(await page.locator('#room-list button:text-is("# still open")').count()).toBe(1);
  });

  it('drops the pending copy of a message stored after its conversation was closed', async () => {
    // Opened again during the outage, its history cannot be read: closed, the message pending.
    const {
      user: lou,
      roomId,
      page,
      pending,
    } = await pendingThroughAnOutage('lou', 'closed on me', 'elsewhere', 'sent into the outage');

    await service.start();
    await expectConnected(page);
    await page.waitForSelector(pending, { state: 'detached' });
    const stored = await fullHistory(service.url, lou.token, roomId);
    expect(stored.map((m) => m.text)).toEqual(['sent into the outage']);
  });

  it('keeps a room list read before a removal from coming back after the one read since', async () => {
    const { owner, member, roomId, page } = await memberLookingAtPrivateRoom('read before');
    const held = gate();
    const fetched = gate();
    let holding = true;
    let fulfilled: Promise<void> | undefined;
    await page.route(/\/api\/rooms\?/, async (route) => {
      if (!holding) return route.continue();
      holding = false;
      // Read now, with the room in it; answered only once the later list is shown.
      const response = await route.fetch();
      fetched.open();
      await held.opened;
      fulfilled = route.fulfill({ response });
      await fulfilled;
    });
    await page.click('#refresh-rooms');
    await fetched.opened;

    await removeMember(service.url, owner, roomId, member.id);
    await expectConversationClosed(
      page,
      'read before',
      `${owner.username} removed you from # read before.`,
    );
    held.open();
    await waitFor('the first list answered', () => fulfilled !== undefined);
    await fulfilled;
    await page.waitForTimeout(SETTLE_MS);
    expect(await page.locator('#room-list button:text-is("# read before")').count()).toBe(0);
  });

  it('says which room lacks messages while its catch-up fails, and stops saying so once caught up', async () => {
    const [fay, gus] = [
      await registerUser(service.url, uniqueUsername('fay')),
      await registerUser(service.url, uniqueUsername('gus')),
    ];
    // Private: its mark must not hide the "(private)" drawn after its name.
    const roomId = await createRoomAs(gus.token, 'gappy', true);
    await addMember(service.url, gus, roomId, fay.id);
    const { page } = await openPageHoldingBack('lost on the way');
    await logIn(page, fay.username);
    const noticeSeen = gate();
    let catchUpReads = 0;
    await page.route(`**/api/rooms/${roomId}/messages?**`, async (route) => {
      if (!route.request().url().includes('since=')) return route.continue();
      catchUpReads += 1;
      if (catchUpReads > 1) {
        await noticeSeen.opened;
        return route.continue();
      }
      const down = { code: 'UNAVAILABLE', message: 'Service temporarily unavailable', details: [] };
      return route.fulfill({ status: 503, json: down });
    });
    await openRoom(page, 'gappy');

    // The first live copy never arrives: the second shows a gap, filled from REST.
    await postMessage(service.url, gus, roomId, 'lost on the way');
    await postMessage(service.url, gus, roomId, 'after the gap');
    await page.waitForSelector(
      '#notice:text-is("Could not fetch missed messages of # gappy (Service temporarily unavailable): retrying, some may show late.")',
    );
    const marked = `#room-list li.behind[data-room-id="${roomId}"] .room`;
    await page.waitForSelector(marked);
    const drawn = (pseudo: string) =>
      page.$eval(
        marked,
        (button, which) =>
          (
            globalThis as unknown as {
              getComputedStyle(element: unknown, pseudo: string): { content: string };
            }
          ).getComputedStyle(button, which).content,
        pseudo,
      );
    expect([await drawn('::before'), await drawn('::after')]).toEqual(['"⟳ "', '" (private)"']);
    noticeSeen.open();

    await page.waitForSelector(messageWithText('after the gap'));
    const texts = await page.$$eval('#message-list .message .text', (items) =>
      items.map((item) => item.textContent),
    );
    expect(texts).toEqual(['lost on the way', 'after the gap']);
    await page.waitForSelector('#notice:empty', { state: 'attached' });
    expect(await page.locator('#room-list li.behind').count()).toBe(0);
  });

  // Last: every test above has run its pages by now.
  it('runs every page of these tests without anything blocked by its policy', () => {
    expect(blockedByPolicy).toEqual([]);
  });

  /** Posts `count` messages a few at a time; the service numbers them. */
  async function postMany(user: TestUser, roomId: string, count: number): Promise<void> {
    for (let posted = 0; posted < count; posted += POST_BATCH) {
      const batch = range(posted + 1, Math.min(count, posted + POST_BATCH));
      await Promise.all(batch.map((n) => postMessage(service.url, user, roomId, `burst ${n}`)));
    }
  }

  async function createRoomAs(
    token: string,
    name: string,
    isPrivate = false,
    url = service.url,
  ): Promise<string> {
    const response = await fetch(`${url}/api/rooms`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, isPrivate }),
    });
    return ((await response.json()) as { id: string }).id;
  }
});

/** The service itself serves the built page at `/` (dist/web). */
async function expectPageServed(url: string): Promise<void> {
  const response = await fetch(url);
  const type = response.headers.get('content-type') ?? '';
  if (response.status !== 200 || !type.includes('text/html')) {
    throw new Error(
      `GET / answered ${response.status} ${type}: the service must serve dist/web at /`,
    );
  }
  // Every test below then runs the page under this policy.
  expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('x-frame-options')).toBe('DENY');
}

/** A membership taken away behind the service's back, as a removal it never told anyone of. */
function removeMembershipInStore(sqlitePath: string, roomId: string, userId: string): void {
  const database = new Database(sqlitePath);
  try {
    database
      .prepare('DELETE FROM room_members WHERE room_id = ? AND user_id = ?')
      .run(roomId, userId);
  } finally {
    database.close();
  }
}

/** A promise the test opens when it chooses: to hold a request back. */
function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
