// A minimal topic fan-out server, the reference that bench/fanout.py compares the app with.
//
//   GET  /ws       clients: send {"type":"subscribe","topic":T}; receive every text published to T
//   GET  /control  the replayer: sends {"frames":[[topic, text], ...]}; each text goes to T's subscribers
//   GET  /stats    JSON counters
//
// It does only what the app's hub does per frame (look up the topic, send the same text to each
// subscriber), so the difference between the two is the cost of the Python stack.
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.env.PORT || 0);
const host = process.env.HOST || '127.0.0.1';
// Mirror what the client offers and the app accepts, so both servers do the same work per frame.
const deflate = process.env.PERMESSAGE_DEFLATE === '1';

const topics = new Map(); // topic -> Set of sockets
const stats = { clients: 0, frames_in: 0, frames_out: 0 };

const server = http.createServer((req, res) => {
  if (req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...stats, topics: topics.size, rss: process.memoryUsage().rss }));
    return;
  }
  res.writeHead(404);
  res.end();
});

const clients = new WebSocketServer({ noServer: true, perMessageDeflate: deflate, maxPayload: 64 * 1024 });
const control = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 * 1024 });

server.on('upgrade', (req, socket, head) => {
  const wss = req.url === '/control' ? control : req.url === '/ws' ? clients : null;
  if (wss === null) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

clients.on('connection', (ws) => {
  stats.clients += 1;
  const mine = new Set();
  ws.on('message', (data) => {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === 'subscribe' && typeof message.topic === 'string') {
      let subscribers = topics.get(message.topic);
      if (subscribers === undefined) {
        subscribers = new Set();
        topics.set(message.topic, subscribers);
      }
      subscribers.add(ws);
      mine.add(message.topic);
      ws.send(JSON.stringify({ type: 'subscribed', topic: message.topic }));
    }
  });
  ws.on('close', () => {
    stats.clients -= 1;
    for (const topic of mine) {
      const subscribers = topics.get(topic);
      if (subscribers === undefined) continue;
      subscribers.delete(ws);
      if (subscribers.size === 0) topics.delete(topic);
    }
  });
  ws.on('error', () => {});
});

control.on('connection', (ws) => {
  ws.on('message', (data) => {
    const { frames } = JSON.parse(data);
    for (const [topic, text] of frames) {
      stats.frames_in += 1;
      const subscribers = topics.get(topic);
      if (subscribers === undefined) continue;
      for (const client of subscribers) {
        if (client.readyState === 1) {
          client.send(text);
          stats.frames_out += 1;
        }
      }
    }
  });
});

server.listen(port, host, () => {
  // The bench reads the port from this line.
  console.log(`listening ${server.address().port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
