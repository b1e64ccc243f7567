// Hostile clients in a process of their own, so that their work does not slow
// the test that measures how the service treats everyone else. Floods until
// asked for a report on IPC, then reports what the service answered.
const { connect: tcpConnect } = require('node:net');
const { deflateRawSync } = require('node:zlib');
const { io } = require('socket.io-client');
const { WebSocket } = require('ws');

const [url, token, roomId] = process.argv.slice(2);
const port = Number(new URL(url).port);
const report = {
  /** sends of the message flood the server stored and acknowledged */
  accepted: 0,
  limited: 0,
  cutOff: 0,
  refusedConnections: 0,
  httpAnswers: [],
  bombClose: undefined,
  /** Socket.IO sessions the server closed for their malformed packets */
  malformedClosed: 0,
};
let flooding = true;
let floodStarted;
const flooding$ = new Promise((resolve) => (floodStarted = resolve));

function floodMessages() {
  const socket = io(url, {
    auth: { token },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  socket.on('connect', () => {
    floodStarted();
    const flood = () => {
      if (!socket.connected || !flooding) return;
      for (let i = 0; i < 50; i += 1) {
        socket.emit('chat:message', { roomId, text: 'spam' }, (answer) => {
          if (answer?.ok) report.accepted += 1;
          else if (answer?.error.code === 'RATE_LIMITED') report.limited += 1;
        });
      }
      setImmediate(flood);
    };
    flood();
  });
  // Refusals of sends that went out without an ack (none do here, but any would count).
  socket.on('error', (error) => error?.code === 'RATE_LIMITED' && (report.limited += 1));
  socket.on('disconnect', (reason) => {
    if (reason === 'io server disconnect') report.cutOff += 1;
    if (flooding) setTimeout(floodMessages, 50);
  });
  socket.on('connect_error', () => flooding && setTimeout(floodMessages, 200));
}

function burstOfConnections() {
  const attempts = Array.from(
    { length: 500 },
    () =>
      new Promise((resolve) => {
        const socket = io(url, {
          auth: { token },
          transports: ['websocket'],
          reconnection: false,
          forceNew: true,
        });
        socket.once('connect', () => resolve(socket.close() && false));
        // Refused for the budget or the per-user cap; any other failure is not a refusal.
        socket.once('connect_error', (error) => {
          socket.close();
          resolve(error.data?.code === 'RATE_LIMITED');
        });
      }),
  );
  return Promise.all(attempts).then(
    (refused) => (report.refusedConnections = refused.filter(Boolean).length),
  );
}

function rawRequest(text) {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('error', () => resolve(answer.split('\r\n')[0]));
    socket.on('close', () => resolve(answer.split('\r\n')[0]));
    socket.write(text);
    setTimeout(() => socket.destroy(), 10000);
  });
}

async function hostileHttp() {
  const headers = Array.from({ length: 2000 }, (_, i) => `X-H${i}: ${i}`).join('\r\n');
  const nested = '['.repeat(200000) + ']'.repeat(200000);
  report.httpAnswers = [
    await rawRequest(`GET /health/live HTTP/1.1\r\nHost: x\r\n${headers}\r\n\r\n`),
    await rawRequest(
      `POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${nested.length}\r\nConnection: close\r\n\r\n${nested}`,
    ),
  ];
}

/** A frame with the compression bit set although no compression was agreed. */
function deflateBombFrame() {
  const payload = deflateRawSync(Buffer.alloc(16 * 1024 * 1024));
  const header = Buffer.alloc(14);
  header[0] = 0xc1;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(payload.length), 2);
  const mask = Buffer.from([1, 2, 3, 4]);
  mask.copy(header, 10);
  return Buffer.concat([header, Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]))]);
}

function hostileWebSocket() {
  return new Promise((resolve) => {
    const bomb = new WebSocket(`${url.replace('http', 'ws')}/ws?token=${token}`);
    bomb.on('error', () => undefined);
    bomb.once('message', () => {
      bomb._socket.write(deflateBombFrame());
    });
    bomb.once('close', (code) => {
      report.bombClose = code;
      resolve();
    });
  });
}

/** Packets no Socket.IO client sends: cut JSON, bad types, attachments that are not there. */
const MALFORMED_PACKETS = [
  '42[',
  '42["chat:message"',
  '451-["chat:message",{"_placeholder":true,"num":9}]',
  '99',
  '4',
  '42{"roomId":1}',
  '43',
  '40/nowhere,',
  '42["chat:message",' + '['.repeat(5000),
];

/** Authenticated Socket.IO sessions over a bare WebSocket, sending malformed packets until cut off. */
function malformedSocketIo(sessions = 10) {
  const wsUrl = `${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
  const session = (n) =>
    new Promise((resolve) => {
      const ws = new WebSocket(wsUrl);
      let gaveUp = false;
      const timer = setTimeout(() => {
        gaveUp = true;
        ws.terminate();
      }, 5000);
      ws.on('error', () => undefined);
      ws.on('message', (data) => {
        const text = data.toString();
        if (text.startsWith('0')) ws.send(`40${JSON.stringify({ token })}`);
        else if (text === '2') ws.send('3');
        else if (text.startsWith('40'))
          for (let i = 0; i < 200 && ws.readyState === WebSocket.OPEN; i += 1)
            ws.send(MALFORMED_PACKETS[(i + n) % MALFORMED_PACKETS.length]);
      });
      ws.on('close', () => {
        clearTimeout(timer);
        if (!gaveUp) report.malformedClosed += 1;
        resolve();
      });
    });
  return Promise.all(Array.from({ length: sessions }, (_, n) => session(n)));
}

/** Tells the test which flood runs from now on, so that it can tell its probes apart. */
const phase = (name) => process.send(`phase:${name}`);

/** The test says so once one of its probes has run under the message flood. */
let probedUnderMessages;
const probed = new Promise((resolve) => (probedUnderMessages = resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  // The WebSocket and HTTP floods first: the connection burst spends this address's budget.
  phase('websocket');
  await hostileWebSocket();
  phase('http');
  await hostileHttp();
  phase('malformed');
  await malformedSocketIo();
  phase('messages');
  floodMessages();
  // Flooding first: the connection burst then spends this address's connection budget.
  await flooding$;
  // At least 300 ms, and until the test has probed under it (however slow the machine).
  await Promise.all([sleep(300), Promise.race([probed, sleep(20_000)])]);
  phase('connections');
  await burstOfConnections();
}

// The message flood goes on until the report is asked for; the other floods are said done.
const done = main()
  .catch((error) => (report.crashed = String(error)))
  .then(() => process.send('floods done'));
process.on('message', async (message) => {
  if (message === 'probed:messages') return probedUnderMessages();
  await done;
  flooding = false;
  process.send(report);
});
