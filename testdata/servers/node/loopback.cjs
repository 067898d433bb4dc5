// Test harness, preloaded with `node --require ./loopback.cjs SERVER`: whatever port and host an
// HTTP server asks for, it listens on 127.0.0.1 only (tests must not open ports to the network),
// and it reports the port it got on stderr as `mcplock-test: listening on 127.0.0.1:PORT`
// (so PORT=0 lets the OS choose a free one).
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const callback = args.find((a) => typeof a === "function");
  let port = 0;
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    port = Number(args[0]) || 0;
  } else if (args[0] && typeof args[0] === "object" && "port" in args[0]) {
    port = Number(args[0].port) || 0;
  }
  this.once("listening", () => {
    process.stderr.write(`mcplock-test: listening on 127.0.0.1:${this.address().port}\n`);
  });
  return callback ? listen.call(this, port, "127.0.0.1", callback) : listen.call(this, port, "127.0.0.1");
};
