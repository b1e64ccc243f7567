export { storedMessage } from '../../src/contract/message.fixture';
