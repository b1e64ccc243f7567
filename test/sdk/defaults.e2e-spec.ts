import { EnvironmentVariables } from '@app/config/env.validation';
import { DEFAULT_ACK_TIMEOUT_MS } from '../../client/src/chat-client';

describe("the SDK's defaults against the service's", () => {
  it('waits for an ack longer than the service may take to answer a send', () => {
    const { MESSAGE_WRITE_TIMEOUT_MS } = new EnvironmentVariables();
    // Refused at the latest after a write timeout waiting and one writing, and a quarter second.
    expect(DEFAULT_ACK_TIMEOUT_MS).toBeGreaterThan(2 * MESSAGE_WRITE_TIMEOUT_MS + 250);
  });
});
