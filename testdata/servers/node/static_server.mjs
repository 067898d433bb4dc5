// A static file server for the tests of published lockfiles and revocation lists: Express's
// own static middleware (ETag, 304 on If-None-Match), on 127.0.0.1 only.
//
// Usage: node static_server.mjs DIR
// Serves DIR at / and prints `listening on 127.0.0.1:PORT` on stderr (PORT chosen by the OS).
import express from "express";

const [dir] = process.argv.slice(2);
const app = express();
app.use(express.static(dir, { etag: true, lastModified: false, cacheControl: false, dotfiles: "allow" }));
const server = app.listen(0, "127.0.0.1", () => {
  process.stderr.write(`listening on 127.0.0.1:${server.address().port}\n`);
});
