// Experiment preload (not used by default): turns Nagle's algorithm off on every TCP socket the process
// opens, which for our action means ssh2's connection — what `client.setNoDelay(true)` right after
// `client.connect()` in src/ssh/connect.ts would do. Compare:
//   npm run bench -- --quick --only P1,P1s
//   npm run bench -- --quick --only P1,P1s --node-args "--import ./scripts/bench/preload-nodelay.mjs"
import net from 'node:net';

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  this.setNoDelay(true);
  return connect.apply(this, args);
};
