/** @jest-environment jsdom */
import { beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { MemberJson, RestClient, RoomJson, UserSummaryJson } from '../../client/src';
import { AddMemberForm } from './add-member-form';

const ME = '0190b0b0-0000-7000-8000-000000000001';
const HANA: UserSummaryJson = { id: '0190b0b0-0000-7000-8000-000000000002', username: 'hana' };

function room(overrides: Partial<RoomJson> = {}): RoomJson {
  return {
    id: '0190b0b0-0000-7000-8000-0000000000aa',
    name: 'crew',
    isPrivate: false,
    ownerId: '0190b0b0-0000-7000-8000-000000000009',
    createdAt: '2026-12-07T10:00:00.000Z',
    lastSeq: 0,
    ...overrides,
  };
}

describe('AddMemberForm', () => {
  let form: HTMLFormElement;
  let signedIn: AbortController;
  let findUser: jest.Mock<(name: string) => Promise<UserSummaryJson>>;
  let addMember: jest.Mock<(roomId: string, userId: string) => Promise<MemberJson>>;
  let notices: string[];
  let view: AddMemberForm;

  beforeEach(() => {
    document.body.innerHTML =
      '<form id="add-member" hidden><input name="username" /><button type="submit">Add</button></form>';
    form = document.getElementById('add-member') as HTMLFormElement;
    signedIn = new AbortController();
    findUser = jest.fn((_name: string) => Promise.resolve(HANA));
    addMember = jest.fn((roomId: string, userId: string) =>
      Promise.resolve({ roomId, ...HANA, id: userId, joinedAt: '2026-12-07T10:00:00.000Z' }),
    );
    notices = [];
    const rest = { findUser, addMember } as unknown as RestClient;
    view = new AddMemberForm(rest, ME, signedIn.signal, (text) => notices.push(text));
  });

  const submit = (name: string) => {
    (form.elements.namedItem('username') as HTMLInputElement).value = name;
    form.dispatchEvent(new Event('submit', { cancelable: true }));
  };
  const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

  it('waits for the join to show the form in a public room, which only members add to', () => {
    const lobby = room();
    view.show(lobby);
    expect(form.hidden).toBe(true);

    view.roomRead(lobby);
    expect(form.hidden).toBe(false);
  });

  it('shows the form in a private room to its owner alone, as the join reads the owner', () => {
    const office = room({ isPrivate: true });
    view.show(office);
    view.roomRead(office);
    expect(form.hidden).toBe(true);

    view.roomRead({ ...office, ownerId: ME });
    expect(form.hidden).toBe(false);
  });

  it('adds whom it found, and says so', async () => {
    const lobby = room();
    view.show(lobby);
    view.roomRead(lobby);
    submit('Hana');
    await settled();

    expect(findUser).toHaveBeenCalledWith('Hana');
    expect(addMember).toHaveBeenCalledWith(lobby.id, HANA.id);
    expect(notices).toEqual(['Added hana to # crew.']);
  });

  it('does not add, in the next user’s name, whom it found after a sign-out', async () => {
    let found!: (user: UserSummaryJson) => void;
    findUser.mockReturnValueOnce(new Promise((resolve) => (found = resolve)));
    const lobby = room();
    view.show(lobby);
    view.roomRead(lobby);
    submit('hana');

    signedIn.abort();
    found(HANA);
    await settled();

    expect(addMember).not.toHaveBeenCalled();
    expect(notices).toEqual([]);
  });
});
