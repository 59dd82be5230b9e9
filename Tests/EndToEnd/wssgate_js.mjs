// Runs the shipped wssgate.js in Node (its WebSocket is the browser's API) against a gateway,
// for the end-to-end tests: node --experimental-websocket wssgate_js.mjs SCENARIO URL
// Prints one JSON line per thing it observed; exits when the scenario is done.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
globalThis.location = { protocol: "http:", host: "unused" };
new Function(readFileSync(join(root, "rootfs/usr/share/wssgate/www/wssgate.js"), "utf8"))();
const [scenario, url] = process.argv.slice(2);
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const within = (promise, ms, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer`)), ms))]);

if (scenario === "subscribe-before-open") {
  // As the docs' example does: subscribe and publish right after connect, before the socket opens.
  const hub = new globalThis.WssGate.Client(url);
  const acked = hub.subscribe("news.early", (data) => say({ message: data }));
  const published = acked.then(() => hub.publish("news.early", { n: 1 }));
  try {
    say({ subscribed: (await within(acked, 5000, "subscribe")).op });
    say({ published: (await within(published, 5000, "publish")).op });
  } catch (error) {
    say({ error: error.message });
  }
  setTimeout(() => { hub.close(); process.exit(0); }, 500);
} else if (scenario === "direct") {
  // Prints every message addressed to this connection, then waits to be stopped.
  const hub = new globalThis.WssGate.Client(url, {
    onMessage: (data, event) => say({ direct: data, encoding: event.encoding || null }),
    onStatus: (state) => { if (state === "open") say({ open: true }); },
  });
  process.on("uncaughtException", (error) => { say({ error: String(error) }); process.exit(1); });
}
