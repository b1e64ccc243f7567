import { cut, type EngineConnection } from './engine-connection';

describe('cut', () => {
  it('terminates a WebSocket connection at once', () => {
    const terminate = jest.fn();
    const close = jest.fn();
    cut({ writeBuffer: [], transport: { socket: { terminate } }, close });
    expect(terminate).toHaveBeenCalled();
    expect(close).not.toHaveBeenCalled();
  });

  it('closes a long-polling connection dropping its backlog, not waiting for a drain that never comes', () => {
    const close = jest.fn();
    const polling: EngineConnection = { writeBuffer: [{ data: 'x' }], transport: {}, close };
    cut(polling);
    expect(close).toHaveBeenCalledWith(true);
  });
});
