import NIOCore
import NIOHTTP1

/// The live console at `/console` on the admin listener: plain HTML and JavaScript inside the
/// binary, no build step. It shows only what it fetches from the admin API with the API's own
/// token (listeners, routes, worker instances, connections, topics, presence, and charts of
/// the gateway's metrics), so serving the page itself gives nothing away.
enum ConsolePage {
    static var response: AdminResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/html; charset=utf-8")
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "x-content-type-options", value: "nosniff")
        headers.add(name: "referrer-policy", value: "no-referrer")
        headers.add(
            name: "content-security-policy",
            value:
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )
        return AdminResponse(status: .ok, headers: headers, body: ByteBuffer(bytes: html))
    }

    static let html: [UInt8] = Array(
        #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>wssgate console</title>
        <style>
        :root { --fg: #1d2330; --muted: #6a7385; --line: #dfe3ea; --accent: #2563eb; --ok: #15803d; --bad: #b91c1c; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f6f7f9; }
        header { display: flex; gap: 1.5em; align-items: baseline; padding: .8em 1.5em; background: #fff; border-bottom: 1px solid var(--line); }
        header h1 { font-size: 1.15em; margin: 0; }
        header .state { font-weight: 600; }
        main { display: grid; grid-template-columns: repeat(auto-fit, minmax(26em, 1fr)); gap: 1em; padding: 1em 1.5em; }
        section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8em 1em; overflow: auto; }
        section.wide { grid-column: 1 / -1; }
        h2 { font-size: .95em; margin: 0 0 .6em; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .25em .6em .25em 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
        th { color: var(--muted); font-weight: 500; }
        .big { font-size: 2em; font-weight: 600; }
        .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(18em, 1fr)); gap: 1em; }
        .chart figcaption { color: var(--muted); }
        .chart canvas { width: 100%; height: 120px; }
        input, select, button { font: inherit; padding: .2em .4em; }
        #login { max-width: 30em; margin: 4em auto; }
        .error { color: var(--bad); }
        .muted { color: var(--muted); }
        </style>
        </head>
        <body data-state="starting">
        <header>
          <h1>wssgate console</h1>
          <span>node <b id="node">—</b></span>
          <span>readiness <span class="state" id="readiness">—</span></span>
          <span class="muted" id="updated"></span>
          <span class="error" id="error"></span>
        </header>
        <form id="login" hidden>
          <p>The admin API's bearer token (kept in this tab only):</p>
          <p><input id="token" type="password" size="40" autocomplete="off"> <button>Open</button></p>
        </form>
        <main id="console" hidden>
          <section class="wide">
            <h2>Live</h2>
            <div class="charts">
              <figure class="chart"><figcaption>connections <b id="now-connections">0</b></figcaption><canvas id="chart-connections"></canvas></figure>
              <figure class="chart"><figcaption>messages/s in + out <b id="now-messages">0</b></figcaption><canvas id="chart-messages"></canvas></figure>
              <figure class="chart"><figcaption>bytes/s in + out <b id="now-bytes">0</b></figcaption><canvas id="chart-bytes"></canvas></figure>
            </div>
          </section>
          <section><h2>Listeners</h2><table id="listeners"></table></section>
          <section><h2>Routes</h2><table id="routes"></table></section>
          <section><h2>Worker instances</h2><table id="workers"></table></section>
          <section><h2>Topics</h2><table id="topics"></table></section>
          <section>
            <h2>Presence</h2>
            <form id="presence-form"><input id="presence-user" placeholder="user id"> <button>Look up</button></form>
            <p id="presence"></p>
          </section>
          <section class="wide">
            <h2>Connections</h2>
            <form id="filters">
              <select id="filter-route"><option value="">every route</option></select>
              <input id="filter-user" placeholder="user">
              <input id="filter-tag" placeholder="tag">
              <button>Filter</button>
              <button type="button" id="first-page">First page</button>
              <button type="button" id="next-page" disabled>Next page</button>
            </form>
            <table id="connections"></table>
          </section>
        </main>
        <script>
        "use strict";
        // Everything shown comes from the admin API of this listener, with its token.
        const params = new URLSearchParams(location.hash.slice(1));
        if (params.get("token")) { sessionStorage.setItem("wssgate-token", params.get("token")); history.replaceState(null, "", location.pathname); }
        let token = sessionStorage.getItem("wssgate-token") || "";
        const $ = (id) => document.getElementById(id);
        const history_ = { connections: [], messages: [], bytes: [] };
        const points = 120;
        let last = null;
        let page = { after: 0, next: null };

        async function api(path) {
          const response = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
          if (response.status === 401) {
            showLogin();
            throw new Error(token ? "the token was refused" : "the admin API needs its token");
          }
          if (!response.ok) throw new Error(path + ": " + response.status);
          return path === "/metrics" ? response.text() : response.json();
        }

        function showLogin() { $("console").hidden = true; $("login").hidden = false; document.body.dataset.state = "login"; }

        function cells(row, values) {
          const tr = document.createElement("tr");
          for (const value of values) { const td = document.createElement(row ? "td" : "th"); td.textContent = value; tr.append(td); }
          return tr;
        }
        function fill(table, head, rows, empty) {
          const t = $(table);
          t.replaceChildren(cells(false, head));
          for (const row of rows) t.append(cells(true, row));
          if (!rows.length) t.append(cells(true, [empty]));
        }

        // Sums of a metric's samples in Prometheus text (every label set).
        function sum(text, name) {
          let total = 0;
          for (const line of text.split("\n")) {
            if (line.startsWith(name + "{") || line.startsWith(name + " ")) total += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
          }
          return total;
        }

        function draw(id, values) {
          const canvas = $(id);
          const width = canvas.width = canvas.clientWidth * devicePixelRatio;
          const height = canvas.height = canvas.clientHeight * devicePixelRatio;
          const g = canvas.getContext("2d");
          g.clearRect(0, 0, width, height);
          g.strokeStyle = "#dfe3ea"; g.lineWidth = 1;
          g.beginPath(); g.moveTo(0, height - 1); g.lineTo(width, height - 1); g.stroke();
          if (!values.length) return;
          const top = Math.max(1, ...values) * 1.15;
          g.strokeStyle = "#2563eb"; g.lineWidth = 2 * devicePixelRatio;
          g.beginPath();
          // The last two minutes at most; a young console spreads what it has over at least 30 s.
          const span = Math.max(30, values.length) - 1;
          values.forEach((v, i) => {
            const x = width - (values.length - 1 - i) * (width / span);
            const y = height - 2 - (v / top) * (height - 4);
            i ? g.lineTo(x, y) : g.moveTo(x, y);
          });
          g.stroke();
          g.fillStyle = "#6a7385"; g.font = (11 * devicePixelRatio) + "px system-ui";
          g.fillText(String(Math.round(top / 1.15)), 4, 12 * devicePixelRatio);
          // The time axis: a point a second, now at the right edge.
          g.textAlign = "right"; g.fillText("now", width - 2, height - 4 * devicePixelRatio);
          g.textAlign = "center";
          for (let ago = 30; ago < span; ago += 30) {
            const x = width - ago * (width / span);
            g.fillRect(x, height - 3 * devicePixelRatio, 1, 3 * devicePixelRatio);
            g.fillText(ago % 60 ? `-${ago} s` : `-${ago / 60} min`, x, height - 5 * devicePixelRatio);
          }
          g.textAlign = "left";
          canvas.dataset.axis = "now" + [...Array(Math.max(0, Math.ceil(span / 30) - 1)).keys()].map(k => ` -${(k + 1) * 30}s`).join("");
        }
        function push(series, value) { series.push(value); if (series.length > points) series.shift(); }
        function rate(value) { return value >= 1e6 ? (value / 1e6).toFixed(1) + "M" : value >= 1e3 ? (value / 1e3).toFixed(1) + "k" : String(Math.round(value)); }

        async function tick() {
          try {
            const [overview, metrics] = await Promise.all([api("/v1/overview"), api("/metrics")]);
            $("node").textContent = overview.node || "standalone";
            $("readiness").textContent = overview.readiness;
            $("readiness").style.color = overview.readiness === "ready" ? "var(--ok)" : "var(--bad)";
            fill("listeners", ["name", "address", "TLS"], overview.listeners.map(l => [l.name, l.address, l.tls ? "yes" : "no"]), "none");
            fill("routes", ["name", "path", "kind", "connections"], overview.routes.map(r => [r.name, r.path, r.kind, r.kind === "static" ? "" : r.connections]), "none");
            const select = $("filter-route");
            for (const route of overview.routes) {
              if (route.kind !== "static" && ![...select.options].some(o => o.value === route.name)) select.add(new Option(route.name, route.name));
            }
            const now = performance.now();
            const counters = { messages: sum(metrics, "wssgate_messages_received_total") + sum(metrics, "wssgate_messages_sent_total"),
                               bytes: sum(metrics, "wssgate_received_bytes_total") + sum(metrics, "wssgate_sent_bytes_total") };
            push(history_.connections, overview.connections);
            if (last) {
              const seconds = (now - last.at) / 1000;
              push(history_.messages, Math.max(0, (counters.messages - last.messages) / seconds));
              push(history_.bytes, Math.max(0, (counters.bytes - last.bytes) / seconds));
            }
            last = { at: now, ...counters };
            $("now-connections").textContent = overview.connections;
            $("now-messages").textContent = rate(history_.messages.at(-1) || 0);
            $("now-bytes").textContent = rate(history_.bytes.at(-1) || 0);
            draw("chart-connections", history_.connections);
            draw("chart-messages", history_.messages);
            draw("chart-bytes", history_.bytes);
            document.body.dataset.connections = overview.connections;
            document.body.dataset.state = "live";
            $("console").hidden = false; $("login").hidden = true;
            $("updated").textContent = "updated " + new Date().toLocaleTimeString();
            $("error").textContent = "";
          } catch (error) {
            $("error").textContent = String(error.message || error);
          }
        }

        async function slow() {
          if (document.body.dataset.state !== "live") return;
          try {
            const [routes, topics] = await Promise.all([api("/v1/routes"), api("/v1/topics")]);
            const instances = routes.routes.flatMap(r => r.instances.map(i => [r.route, i.name || "", i.pid ?? "—", i.state, i.connections]));
            fill("workers", ["route", "instance", "pid", "state", "connections"], instances, "no worker routes");
            fill("topics", ["topic", "subscribers"], topics.topics.filter(t => !t.topic.startsWith("$")).map(t => [t.topic, t.subscribers]), "no subscriptions");
            await connections();
          } catch (error) {
            $("error").textContent = String(error.message || error);
          }
        }

        async function connections() {
          const query = new URLSearchParams({ limit: "50" });
          if (page.after) query.set("after", page.after);
          for (const [key, id] of [["route", "filter-route"], ["user", "filter-user"], ["tag", "filter-tag"]]) {
            if ($(id).value) query.set(key, $(id).value);
          }
          const result = await api("/v1/connections?" + query);
          page.next = result.next;
          $("next-page").disabled = result.next === null;
          fill("connections", ["id", "route", "peer", "user", "tags", "topics", "opened"],
               result.connections.map(c => [c.id, c.route, c.peer, c.user || "", c.tags.join(" "), c.topics.join(" "), c.opened_at]),
               "none");
        }

        $("filters").onsubmit = (event) => { event.preventDefault(); page.after = 0; connections(); };
        $("first-page").onclick = () => { page.after = 0; connections(); };
        $("next-page").onclick = () => { if (page.next !== null) { page.after = page.next; connections(); } };
        $("presence-form").onsubmit = async (event) => {
          event.preventDefault();
          const user = $("presence-user").value;
          if (!user) return;
          try {
            const answer = await api("/v1/users/" + encodeURIComponent(user));
            $("presence").textContent = answer.online ? user + " is online, " + answer.count + (answer.count === 1 ? " connection" : " connections") : user + " is offline";
          } catch (error) { $("presence").textContent = String(error.message || error); }
        };
        $("login").onsubmit = (event) => {
          event.preventDefault();
          token = $("token").value;
          sessionStorage.setItem("wssgate-token", token);
          tick().then(slow);
        };

        tick().then(slow);
        setInterval(tick, 1000);
        setInterval(slow, 2000);
        </script>
        </body>
        </html>

        """#.utf8
    )
}
