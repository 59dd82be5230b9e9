// wssgate.js: the browser client of wssgate's hub protocol (docs/hub-protocol.md). No
// dependencies; load it with <script src="/wssgate.js"></script> and use `WssGate`.
//
//   const hub = WssGate.connect("/hub");
//   hub.subscribe("chat.lobby", (data, event) => show(data), {
//     recovered: (count) => note(`recovered ${count} messages`),
//     lost: () => reloadFromTheApp(),
//   });
//   await hub.publish("chat.lobby", { text: "hi" });
//
// Messages sent to this connection itself — by its id, its user or a tag (the admin API, a
// worker, an http route's app) — go to `options.onMessage(data, event)`.
//
// It reconnects by itself, with jittered exponential backoff (longer after 1013, Try Again
// Later; soon but spread after 1001 Going Away and 1012 Service Restart), and resubscribes every
// topic with the position it last saw, so nothing published while it was away is lost on topics
// the gateway keeps history for (`hub.history`).
(function (global) {
  "use strict";

  /** wss: on an https page, ws: on an http one: the same code works everywhere. */
  function getWebSocketUrl(path) {
    const scheme = global.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${global.location.host}${path}`;
  }

  /** The delay before reconnect attempt `attempt` (0-based) after a close with `code`. */
  function reconnectDelay(attempt, code, options) {
    let base = options.minDelay * Math.pow(2, attempt);
    if (code === 1013) base = Math.max(base, options.busyDelay);
    const capped = Math.min(base, options.maxDelay);
    // Full jitter: clients that lost the same gateway do not come back at the same instant.
    return capped / 2 + Math.random() * (capped / 2);
  }

  class Client {
    constructor(url, options = {}) {
      this.url = url;
      this.options = Object.assign(
        { minDelay: 250, maxDelay: 30000, busyDelay: 5000, onStatus: () => {}, onMessage: () => {} },
        options,
      );
      this.topics = new Map(); // topic → { handler, callbacks, position: {offset, epoch} | null }
      this.pending = new Map(); // request id → { resolve, reject }
      this.queue = []; // requests made while disconnected
      this.nextId = 1;
      this.attempt = 0;
      this.closed = false;
      this.socket = null;
      this._open();
    }

    /** Subscribes `handler(data, event)` to `topic` (or a `prefix.*` pattern). `callbacks`:
     *  `recovered(count)` after a resume that got every missed message, `lost(position, since)`
     *  when the history could not serve one (messages were missed; `since.epoch` differs from
     *  `position.epoch` when the gateway lost its history), `ack(event)` on every ack. */
    subscribe(topic, handler, callbacks = {}) {
      const entry = { handler, callbacks, position: null };
      this.topics.set(topic, entry);
      return this._subscribe(topic, entry);
    }

    unsubscribe(topic) {
      this.topics.delete(topic);
      return this._request({ op: "unsubscribe", topic });
    }

    /** Publishes `data` (any JSON value); resolves with the ack (its `position` on a topic with
     *  history). Made while disconnected, it is sent once the connection is back. */
    publish(topic, data) {
      return this._request({ op: "publish", topic, data });
    }

    /** Where this client stands on `topic`: the last position it saw, or null. */
    position(topic) {
      const entry = this.topics.get(topic);
      return entry && entry.position ? Object.assign({}, entry.position) : null;
    }

    close() {
      this.closed = true;
      clearTimeout(this.timer);
      if (this.socket) this.socket.close(1000, "bye");
    }

    _status(state, detail) {
      this.state = state;
      this.options.onStatus(state, detail);
    }

    _open() {
      this._status("connecting");
      let socket;
      try {
        socket = new WebSocket(this.url);
      } catch (error) {
        this._status("failed", String(error));
        return; // refused by the browser itself (mixed content): retrying cannot help
      }
      this.socket = socket;
      socket.onopen = () => {
        this.attempt = 0;
        this._status("open");
        // Subscriptions asked for while disconnected wait in the queue with their promises'
        // ids; every other topic is subscribed again, from the last position seen.
        const queued = this.queue;
        this.queue = [];
        const waiting = new Set(queued.filter((request) => request.op === "subscribe").map((request) => request.topic));
        for (const [topic, entry] of this.topics) if (!waiting.has(topic)) this._subscribe(topic, entry);
        for (const request of queued) {
          if (request.op === "subscribe") {
            const entry = this.topics.get(request.topic);
            if (!entry) {
              this._settle(request.id, { op: "ack", id: request.id, topic: request.topic });
              continue; // unsubscribed meanwhile
            }
            if (entry.position) request.since = entry.position;
            else delete request.since;
            const waiter = this.pending.get(request.id);
            if (waiter) waiter.request = Object.assign({}, request); // what the ack answers
          }
          socket.send(JSON.stringify(request));
        }
      };
      socket.onmessage = (message) => this._receive(JSON.parse(message.data));
      socket.onclose = (event) => {
        this.socket = null;
        for (const [, waiter] of this.pending) waiter.retry();
        if (this.closed) return this._status("closed", event.code);
        const delay = reconnectDelay(this.attempt++, event.code, this.options);
        this._status("reconnecting", { code: event.code, reason: event.reason, delay });
        this.timer = setTimeout(() => this._open(), delay);
      };
    }

    _subscribe(topic, entry) {
      const request = { op: "subscribe", topic };
      if (entry.position) request.since = entry.position;
      return this._request(request);
    }

    /** Sends a request with a fresh id; resolves with its ack, rejects with its error. A
     *  request cut off by a lost connection is sent again once it is back — except a publish,
     *  whose fate is unknown: it rejects, so the application decides. */
    _request(request) {
      return new Promise((resolve, reject) => {
        const id = this.nextId++;
        const message = Object.assign({ id }, request);
        const retry = () => {
          if (request.op === "publish") {
            this.pending.delete(id);
            reject(new Error("connection lost before the publish was acknowledged"));
          } else {
            this.queue.push(message); // sent again once the connection is back, same promise
          }
        };
        this.pending.set(id, { resolve, reject, request, retry });
        if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
        else this.queue.push(message);
      });
    }

    _settle(id, event) {
      const waiter = this.pending.get(id);
      this.pending.delete(id);
      if (waiter) waiter.resolve(event);
    }

    _receive(event) {
      if (event.op === "direct") {
        this.options.onMessage(event.data, event);
        return;
      }
      if (event.op === "message") {
        const entry = this._entryFor(event.topic);
        if (!entry) return;
        if (event.offset !== undefined && entry.position) {
          if (event.offset <= entry.position.offset) return; // seen already
          entry.position = { offset: event.offset, epoch: entry.position.epoch };
        }
        entry.handler(event.data, event);
        return;
      }
      const waiter = this.pending.get(event.id);
      this.pending.delete(event.id);
      if (event.op === "ack" && event.position && waiter && waiter.request.op === "subscribe") {
        const entry = this.topics.get(event.topic);
        if (entry) {
          const resumed = waiter.request.since !== undefined;
          if (resumed && event.recovered) {
            if (entry.callbacks.recovered) entry.callbacks.recovered(event.missed, event.position);
          } else {
            // `since` tells why: another epoch means the gateway lost the history (a restart
            // with memory storage), the same one that it no longer reaches back that far.
            if (resumed && entry.callbacks.lost) entry.callbacks.lost(event.position, waiter.request.since);
            entry.position = event.position;
          }
        }
      }
      if (event.op === "ack") {
        const entry = this.topics.get(event.topic);
        if (entry && entry.callbacks.ack) entry.callbacks.ack(event);
      }
      if (!waiter) return;
      if (event.op === "error") waiter.reject(new Error(event.error));
      else waiter.resolve(event);
    }

    /** The subscription a message belongs to: its topic, else the pattern that covers it. */
    _entryFor(topic) {
      if (this.topics.has(topic)) return this.topics.get(topic);
      for (const [pattern, entry] of this.topics) {
        if (pattern === "*" || (pattern.endsWith(".*") && topic.startsWith(pattern.slice(0, -1)))) return entry;
      }
      return null;
    }
  }

  global.WssGate = {
    Client,
    getWebSocketUrl,
    reconnectDelay,
    /** A client of the hub route at `path` on the gateway that served the page. */
    connect(path, options) {
      return new Client(getWebSocketUrl(path), options);
    },
  };
})(typeof window !== "undefined" ? window : globalThis);
