import Foundation
import GatewayConfigLoader
import GatewayCore
import NIOCore
import NIOWebSocket
import XCTest

final class ConfigurationLoaderTests: XCTestCase {
    private func write(_ text: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wgcfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("wssgate.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func load(
        _ text: String,
        environment: [String: String] = [:],
        overrides: [String] = []
    ) async throws -> GatewayConfiguration {
        try await ConfigurationLoader(filePath: try write(text), environment: environment, overrides: overrides).load()
    }

    private func loadError(
        _ text: String,
        environment: [String: String] = [:],
        overrides: [String] = []
    ) async throws -> ConfigurationError {
        do {
            _ = try await load(text, environment: environment, overrides: overrides)
        } catch let error as ConfigurationError {
            return error
        }
        XCTFail("expected a configuration error")
        throw CancellationError()
    }

    static let minimal = """
        listeners:
          main:
            address: "127.0.0.1:9000"
        routes:
          echo:
            path: /echo
            kind: echo
        """

    func testEmbeddedDefault() async throws {
        let configuration = try await ConfigurationLoader(filePath: nil).load()
        XCTAssertEqual(configuration.listeners.map(\.name), ["main"])
        XCTAssertEqual(configuration.listeners[0].address, .tcp(host: "0.0.0.0", port: 8443))
        XCTAssertEqual(configuration.listeners[0].tls?.source, .selfSigned(names: ["localhost", "127.0.0.1", "::1"]))
        XCTAssertEqual(configuration.routes.map(\.path), ["/chat", "/", "/echo", "/hub"])
        XCTAssertEqual(
            configuration.routes[0].worker?.source,
            .supervised(
                command: EmbeddedDefault.ownExecutable,
                arguments: ["worker", "chat"],
                environment: [],
                instances: 1
            )
        )
        // No folder given: the demo page built into the binary.
        XCTAssertEqual(configuration.routes[1].backend, .static(StaticSettings(root: StaticSettings.builtinDemo)))
        XCTAssertEqual(configuration.routes[2].limits.maxMessageBytes, 1 << 20)
    }

    func testEmbeddedDefaultTakesEnvironmentOverrides() async throws {
        let configuration = try await ConfigurationLoader(
            filePath: nil,
            environment: ["WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:9443"]
        ).load()
        XCTAssertEqual(configuration.listeners[0].address, .tcp(host: "127.0.0.1", port: 9443))
    }

    func testDefaultsApply() async throws {
        let configuration = try await load(Self.minimal)
        XCTAssertNil(configuration.listeners[0].tls)
        XCTAssertEqual(configuration.http.maxHeaderBytes, 16384)
        XCTAssertEqual(configuration.http.headerTimeout, .seconds(10))
        XCTAssertEqual(configuration.routes[0].limits.pingInterval, .seconds(30))
        XCTAssertEqual(configuration.server.drainTimeout, .seconds(30))
    }

    func testUnknownKeyIsNamed() async throws {
        let error = try await loadError(Self.minimal + "\n    max_mesage_bytes: 5\n")
        XCTAssertEqual(error.code, .unknownKey)
        XCTAssertEqual(error.key, "routes.echo.max_mesage_bytes")
    }

    func testWrongTypesAreNamed() async throws {
        var error = try await loadError(Self.minimal + "\n    max_message_bytes: lots\n")
        XCTAssertEqual(error.code, .wrongType)
        XCTAssertEqual(error.key, "routes.echo.max_message_bytes")
        error = try await loadError(Self.minimal + "\n    subprotocols:\n      a: b\n")
        XCTAssertEqual(error.key, "routes.echo.subprotocols")
        error = try await loadError("listeners: 5\n")
        XCTAssertEqual(error.key, "listeners")
    }

    /// Each kind of value the key table declares is checked against its declaration: ranges,
    /// positive durations, words, `never`, rates, booleans; the edge of a range loads.
    func testDeclaredRangesAndWordsAreEnforced() async throws {
        let cases: [(String, String, ConfigurationError.Code)] = [
            ("\n    compression:\n      level: 10\n", "routes.echo.compression.level", .invalidValue),
            ("\n    max_message_bytes: 100\n", "routes.echo.max_message_bytes", .invalidValue),
            ("\n    ping_interval: 0\n", "routes.echo.ping_interval", .invalidValue),
            ("\n    overflow_close_code: 1009\n", "routes.echo.overflow_close_code", .invalidValue),
            ("\n    overflow_close_code: often\n", "routes.echo.overflow_close_code", .invalidValue),
            ("\n    max_messages_per_second: -1\n", "routes.echo.max_messages_per_second", .invalidValue),
            ("\n    require_subprotocol: maybe\n", "routes.echo.require_subprotocol", .wrongType),
            ("\nlog:\n  level: loud\n", "log.level", .invalidValue),
            ("\nserver:\n  removed_route_grace: soon\n", "server.removed_route_grace", .wrongType),
            ("\ncluster:\n  redis: redis://127.0.0.1:6379\n  node_number: 0\n", "cluster.node_number", .invalidValue),
        ]
        for (text, key, code) in cases {
            let error = try await loadError(Self.minimal + text)
            XCTAssertEqual(error.key, key, text)
            XCTAssertEqual(error.code, code, text)
        }
        let edge = try await load(Self.minimal + "\n    compression:\n      level: 9\n    overflow_close_code: 1008\n")
        XCTAssertEqual(edge.routes[0].compression.level, 9)
        XCTAssertEqual(edge.routes[0].limits.overflowCloseCode, .policyViolation)
    }

    func testEnvironmentAndFlags() async throws {
        let configuration = try await load(
            Self.minimal,
            environment: [
                "WSSGATE_ROUTES_ECHO_MAX_MESSAGE_BYTES": "2MiB", "WSSGATE_ROUTES_ECHO_PING_INTERVAL": "5s",
                "PATH": "/bin",
            ],
            overrides: ["routes.echo.ping_interval=7s", "listeners.extra.address=127.0.0.1:0"]
        )
        XCTAssertEqual(configuration.routes[0].limits.maxMessageBytes, 2 << 20)
        XCTAssertEqual(configuration.routes[0].limits.pingInterval, .seconds(7))
        XCTAssertEqual(configuration.listeners.map(\.name), ["extra", "main"])
    }

    func testUnknownEnvironmentVariableIsAnError() async throws {
        let error = try await loadError(Self.minimal, environment: ["WSSGATE_ROUTES_ECHO_PTH": "/x"])
        XCTAssertEqual(error.code, .unknownKey)
        XCTAssertEqual(error.key, "WSSGATE_ROUTES_ECHO_PTH")
    }

    func testProxyProtocolAndProxyModeValues() async throws {
        let listener = "address: \"127.0.0.1:9000\""
        let loaded = try await load(
            Self.minimal.replacingOccurrences(
                of: listener,
                with: listener + "\n    proxy_protocol:\n      trusted: [10.0.0.0/8]"
            )
        )
        XCTAssertEqual(loaded.listeners.first?.proxyProtocol?.trusted.map(\.description), ["10.0.0.0/8"])
        for (trusted, why) in [("[]", "name the load balancers"), ("[10.0.0.0/33]", "not an IP address or CIDR")] {
            let error = try await loadError(
                Self.minimal.replacingOccurrences(
                    of: listener,
                    with: listener + "\n    proxy_protocol:\n      trusted: \(trusted)"
                )
            )
            XCTAssertEqual(error.key, "listeners.main.proxy_protocol.trusted")
            XCTAssertTrue(error.description.contains(why), error.description)
        }
        let proxy =
            Self.minimal + "\n  app:\n    path: /app\n    kind: proxy\n    proxy:\n      upstream: ws://127.0.0.1:1/\n"
        var error = try await loadError(proxy + "      mode: messages\n")
        XCTAssertEqual(error.key, "routes.app.proxy.mode")
        error = try await loadError(proxy + "      lost_close_code: 1006\n")
        XCTAssertEqual(error.key, "routes.app.proxy.lost_close_code")
        // An http route: each bad value is refused naming its key.
        let http = Self.minimal + "\n  app:\n    path: /app\n    kind: http\n    http:\n"
        for (line, key) in [
            ("      connections: 0\n", "connections"), ("      retries: 101\n", "retries"),
            ("      queue_messages: 0\n", "queue_messages"), ("      batch_messages: 1001\n", "batch_messages"),
            ("      unavailable_close_code: 1006\n", "unavailable_close_code"),
            ("      forward_headers: [\"bad header\"]\n", "forward_headers"), ("      timeout: 0s\n", "timeout"),
        ] {
            error = try await loadError(http + "      url: http://127.0.0.1:9000/\n" + line)
            XCTAssertEqual(error.key, "routes.app.http.\(key)", line)
        }
        for url in ["https://app/", "http://app:0/", "unix:relative"] {
            error = try await loadError(http + "      url: \"\(url)\"\n")
            XCTAssertEqual(error.key, "routes.app.http.url", url)
        }
        error = try await loadError(http + "      timeout: 1s\n")
        XCTAssertEqual(error.key, "routes.app.http.url", "url is required")
        error = try await loadError(proxy + "    http:\n      url: http://127.0.0.1:9000/\n")
        XCTAssertEqual(error.key, "routes.app.http", "only http routes have an http section")
    }

    /// HTTP/2 is a TLS listener's option: off by default, on where asked, an error without TLS.
    func testHTTP2IsATLSListenersOption() async throws {
        let listener = "address: \"127.0.0.1:9000\""
        let plain = try await load(Self.minimal)
        XCTAssertNil(plain.listeners.first?.tls)
        let tls = try await load(
            Self.minimal.replacingOccurrences(
                of: listener,
                with: listener + "\n    tls:\n      self_signed: true\n      http2: true"
            )
        )
        XCTAssertEqual(tls.listeners.first?.tls?.http2, true)
        var error = try await loadError(
            Self.minimal.replacingOccurrences(of: listener, with: listener + "\n    tls:\n      http2: true")
        )
        XCTAssertEqual(error.key, "listeners.main.tls")
        XCTAssertTrue(error.description.contains("http2 need certificate"), error.description)
        error = try await loadError(
            Self.minimal.replacingOccurrences(
                of: listener,
                with: listener + "\n    tls:\n      self_signed: true\n      http2: sometimes"
            )
        )
        XCTAssertEqual(error.key, "listeners.main.tls.http2")
    }

    func testDuplicatesAndMissingValues() async throws {
        var error = try await loadError(Self.minimal + "\n  again:\n    path: /echo\n    kind: echo\n")
        XCTAssertEqual(error.code, .duplicate)
        XCTAssertEqual(error.key, "routes.again.path")
        error = try await loadError("routes:\n  echo:\n    path: /echo\n    kind: echo\n")
        XCTAssertEqual(error.key, "listeners")
        error = try await loadError(Self.minimal + "\n  nokind:\n    path: /x\n")
        XCTAssertEqual(error.key, "routes.nokind.kind")
        error = try await loadError(
            Self.minimal.replacingOccurrences(of: "address: \"127.0.0.1:9000\"", with: "tls:\n      key: /k.pem")
        )
        XCTAssertEqual(error.key, "listeners.main.address")
    }

    func testARouteHasOnlyTheSectionOfItsKind() async throws {
        for (section, text) in [
            ("hub", "hub:\n      subscribe: [a]"),
            ("proxy", "proxy:\n      upstream: ws://127.0.0.1:9/"),
            ("worker", "worker:\n      socket: /run/w.sock"),
            ("static", "static:\n      root: /srv"),
        ] {
            let error = try await loadError(Self.minimal + "\n    " + text + "\n")
            XCTAssertEqual(error.code, .invalidValue, section)
            XCTAssertEqual(error.key, "routes.echo." + section)
            XCTAssertEqual(error.message, "only routes of kind \(section) have a \(section) section")
        }
    }

    func testTLSSettings() async throws {
        let text = Self.minimal.replacingOccurrences(
            of: "address: \"127.0.0.1:9000\"",
            with:
                "address: \"127.0.0.1:9000\"\n    tls:\n      certificate: /c.pem\n      key: /k.pem\n      min_version: \"1.3\""
        )
        let configuration = try await load(text)
        XCTAssertEqual(
            configuration.listeners[0].tls,
            TLSSettings(source: .files(certificate: "/c.pem", key: "/k.pem"), minimumVersion: .tls13)
        )
        let error = try await loadError(text.replacingOccurrences(of: "      key: /k.pem\n", with: ""))
        XCTAssertEqual(error.key, "listeners.main.tls.key")
    }

    func testWorkerRoutes() async throws {
        let text =
            Self.minimal + """

                  work:
                    path: /work
                    kind: worker
                    worker:
                      command: /usr/bin/worker
                      args: [--fast]
                      env: ["A=1"]
                      instances: 3
                      authorize: true
                      authorize_timeout: 2s
                """
        let route = try await load(text).routes.first { $0.name == "work" }!
        XCTAssertEqual(
            route.worker?.source,
            .supervised(command: "/usr/bin/worker", arguments: ["--fast"], environment: ["A=1"], instances: 3)
        )
        XCTAssertEqual(route.worker?.authorizeTimeout, .seconds(2))
        XCTAssertEqual(route.worker?.forwardHeaders, ["origin", "cookie", "authorization", "user-agent"])
        var error = try await loadError(
            text.replacingOccurrences(
                of: "command: /usr/bin/worker",
                with: "command: /usr/bin/worker\n      socket: /run/w.sock"
            )
        )
        XCTAssertEqual(error.key, "routes.work.worker.socket")
        error = try await loadError(text.replacingOccurrences(of: "env: [\"A=1\"]", with: "env: [\"A\"]"))
        XCTAssertEqual(error.key, "routes.work.worker.env")
        error = try await loadError(Self.minimal + "\n  w:\n    path: /w\n    kind: worker\n")
        XCTAssertEqual(error.key, "routes.w.worker.command")
        error = try await loadError(Self.minimal + "\n    worker:\n      socket: /x.sock\n")
        XCTAssertEqual(error.key, "routes.echo.worker")
    }

    func testHibernationAutoResponsesAndMoves() async throws {
        let text =
            Self.minimal + """

                  work:
                    path: /work
                    kind: worker
                    worker:
                      command: /usr/bin/worker
                      instances: 2
                      min_instances: 0
                      idle_stop: 30s
                      attachment_bytes: 4KiB
                      on_change: move
                      auto_response:
                        requests: [ping, '{"t":"hb"}']
                        responses: [pong, '{"t":"hb-ack"}']
                """
        let worker = try await load(text).routes.first { $0.name == "work" }!.worker!
        XCTAssertEqual(worker.alwaysRunning, 0)
        XCTAssertTrue(worker.hibernates)
        XCTAssertEqual(worker.idleStop, .seconds(30))
        XCTAssertEqual(worker.attachmentBytes, 4096)
        XCTAssertEqual(worker.onChange, .move)
        XCTAssertEqual(
            worker.autoResponses,
            [.init(request: "ping", response: "pong"), .init(request: #"{"t":"hb"}"#, response: #"{"t":"hb-ack"}"#)]
        )
        // Each bad value is refused naming its key.
        let bad: [(String, String, String)] = [
            ("min_instances: 0", "min_instances: 3", "routes.work.worker.min_instances"),
            ("attachment_bytes: 4KiB", "attachment_bytes: 64KiB", "routes.work.worker.attachment_bytes"),
            ("on_change: move", "on_change: restart", "routes.work.worker.on_change"),
            ("responses: [pong, ", "responses: [", "routes.work.worker.auto_response.responses"),
            (#"requests: [ping, '{"t":"hb"}']"#, "requests: [ping, ping]", "routes.work.worker.auto_response.requests"),
        ]
        for (from, to, key) in bad {
            let error = try await loadError(text.replacingOccurrences(of: from, with: to))
            XCTAssertEqual(error.key, key, "\(to)")
        }
        // External workers neither hibernate nor move.
        let external = text.replacingOccurrences(
            of: "command: /usr/bin/worker\n      instances: 2\n",
            with: "socket: /run/w.sock\n"
        )
        var error = try await loadError(external.replacingOccurrences(of: "      on_change: move\n", with: ""))
        XCTAssertEqual(error.key, "routes.work.worker.min_instances")
        error = try await loadError(external.replacingOccurrences(of: "      min_instances: 0\n", with: ""))
        XCTAssertEqual(error.key, "routes.work.worker.on_change")

        // Only a change of command, arguments or environment moves; anything else builds a new pool.
        var moved = worker
        moved.source = .supervised(command: "/usr/bin/worker2", arguments: ["-v"], environment: ["A=2"], instances: 2)
        XCTAssertTrue(worker.movable(to: moved))
        var finishing = moved
        finishing.onChange = .finish
        XCTAssertFalse(worker.movable(to: finishing))
        var resized = moved
        resized.source = .supervised(command: "/usr/bin/worker2", arguments: [], environment: [], instances: 3)
        XCTAssertFalse(worker.movable(to: resized))
        var retimed = moved
        retimed.idleStop = .seconds(5)
        XCTAssertFalse(worker.movable(to: retimed))
    }

    func testEnvironmentNames() {
        XCTAssertEqual(
            ConfigurationLoader.environmentName(for: ["routes", "echo", "max_message_bytes"]),
            "WSSGATE_ROUTES_ECHO_MAX_MESSAGE_BYTES"
        )
        XCTAssertEqual(
            ConfigurationLoader.environmentName(for: ["routes", "my-route", "path"]),
            "WSSGATE_ROUTES_MY_ROUTE_PATH"
        )
    }

    /// docs/configuration.md's key tables are the key declarations (ConfigKeys), every key in
    /// one of them; `WSSGATE_RECORD_DOCS=1` writes them anew.
    func testDocsTablesAreTheDeclarations() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = root.appendingPathComponent("docs/configuration.md")
        let docs = try String(contentsOf: path, encoding: .utf8)
        let rendered = ConfigDocs.render(docs)
        if ProcessInfo.processInfo.environment["WSSGATE_RECORD_DOCS"] == "1" {
            try rendered.write(to: path, atomically: true, encoding: .utf8)
        } else {
            XCTAssertEqual(
                docs,
                rendered,
                "docs/configuration.md's tables differ from ConfigKeys: run the tests with WSSGATE_RECORD_DOCS=1"
            )
        }
        XCTAssertEqual(
            ConfigDocs.documentedKeys(rendered).sorted(),
            ConfigSchema.allKeyPatterns.sorted(),
            "every key in exactly one table"
        )
        XCTAssertEqual(ConfigSchema.allKeyPatterns.count, 135)
    }

    /// The declared defaults load as the settings types' own defaults, so code that builds a
    /// configuration in Swift gets what a file that leaves the keys out gets.
    func testDeclaredDefaultsAreTheTypesDefaults() async throws {
        let configuration = try await load(
            Self.minimal + """

                  work:
                    path: /work
                    kind: worker
                    worker:
                      socket: /run/w.sock
                  upstream:
                    path: /up
                    kind: proxy
                    proxy:
                      upstream: ws://127.0.0.1:9000/
                  topics:
                    path: /topics
                    kind: hub
                  signed:
                    path: /signed
                    kind: echo
                    auth:
                      hs256_secret: "0123456789abcdef0123456789abcdef"
                """
        )
        XCTAssertEqual(configuration.log, LogSettings())
        XCTAssertEqual(configuration.server, ServerSettings())
        XCTAssertEqual(configuration.http, HTTPSettings())
        XCTAssertEqual(configuration.limits, LimitSettings())
        let echo = try XCTUnwrap(configuration.routes.first { $0.name == "echo" })
        XCTAssertEqual(echo.limits, WebSocketLimits())
        XCTAssertEqual(echo.compression, CompressionSettings())
        XCTAssertEqual(
            configuration.routes.first { $0.name == "work" }?.worker,
            WorkerSettings(source: .external(socket: "/run/w.sock"))
        )
        let proxy = try XCTUnwrap(configuration.routes.first { $0.name == "upstream" }?.proxy)
        XCTAssertEqual(proxy, ProxySettings(upstream: proxy.upstream, path: proxy.path, hostHeader: proxy.hostHeader))
        XCTAssertEqual(configuration.routes.first { $0.name == "topics" }?.backend, .hub(HubRouteSettings()))
        var auth = JWTSettings()
        auth.secrets = ["0123456789abcdef0123456789abcdef"]
        XCTAssertEqual(configuration.routes.first { $0.name == "signed" }?.auth, auth)
        let acmeConfiguration = try await load(Self.acme)
        let acme = try XCTUnwrap(acmeConfiguration.listeners.first { $0.name == "main" }?.tls?.acme)
        let acmeDefaults = ACMESettings(
            directory: acme.directory,
            email: acme.email,
            domains: acme.domains,
            challenges: acme.challenges,
            retryInitial: acme.retryInitial
        )
        XCTAssertEqual(acme, acmeDefaults)
    }

    /// Every key of a configuration that sets them all is printed, and a change to a key whose
    /// declaration says `restart` is what the reload refuses, by its path.
    func testRestartOnlyChangesComeFromTheDeclarations() async throws {
        let original = try await load(Self.minimal)
        var changed = original
        changed.server.threads = 3
        changed.routes[0].limits.pingInterval = .seconds(7)
        XCTAssertEqual(EffectiveConfiguration.restartOnlyChanges(from: original, to: changed), ["server.threads"])
        changed.admin.token = "another-token-0123456789"
        XCTAssertEqual(
            EffectiveConfiguration.restartOnlyChanges(from: original, to: changed),
            ["admin.token", "server.threads"]
        )
        XCTAssertEqual(EffectiveConfiguration.restartOnlyChanges(from: original, to: original), [])
    }

    static let acme = """
        listeners:
          main:
            address: "127.0.0.1:9443"
            tls:
              acme:
                directory: letsencrypt
                email: ops@example.org
                domains: [Example.org, www.example.org, example.org]
                challenges: http-01
                retry_initial: 5s
          http:
            address: "127.0.0.1:9080"
            redirect_https: 9443
        routes:
          echo:
            path: /echo
            kind: echo
        """

    /// `tls.acme`: presets, defaults, lower-cased and de-duplicated names; printed and loaded back.
    func testACMESettingsLoadWithDefaultsAndRoundTrip() async throws {
        let configuration = try await load(Self.acme)
        let acme = try XCTUnwrap(configuration.listeners.first { $0.name == "main" }?.tls?.acme)
        XCTAssertEqual(acme.directory, ACMESettings.letsEncrypt)
        XCTAssertEqual(acme.domains, ["example.org", "www.example.org"])
        XCTAssertEqual(acme.challenges, [.http01])
        XCTAssertEqual(acme.storage, "/var/lib/wssgate/acme")
        XCTAssertEqual(acme.retryInitial, .seconds(5))
        XCTAssertEqual(acme.retryMax, .hours(24))
        XCTAssertEqual(acme.certificatePath, "/var/lib/wssgate/acme/certificates/example.org/fullchain.pem")
        let printed = try await load(EffectiveConfiguration.yaml(configuration))
        XCTAssertEqual(printed, configuration)
        // acme with certificate files, or a bad retry_max, names the key.
        let both = try await loadError(
            Self.acme.replacingOccurrences(
                of: "      acme:\n",
                with: "      certificate: /c.pem\n      key: /k.pem\n      acme:\n"
            )
        )
        XCTAssertEqual(both.key, "listeners.main.tls.acme")
        let retry = try await loadError(
            Self.acme.replacingOccurrences(of: "retry_initial: 5s", with: "retry_initial: 5s\n        retry_max: 2s")
        )
        XCTAssertEqual(retry.key, "listeners.main.tls.acme.retry_max")
    }

    /// The printed effective configuration loads back to the same configuration.
    func testEffectiveConfigurationRoundTrips() async throws {
        let original = try await load(Self.minimal + "\n    subprotocols: [a, b]\n    idle_timeout: 250ms\n")
        let again = try await load(EffectiveConfiguration.yaml(original))
        XCTAssertEqual(original, again)
    }

    /// Found by the configuration fuzz target: a file without routes loads, and its print said
    /// `routes:` with nothing under it, which YAML reads as a null and the loader refused.
    func testAConfigurationWithoutRoutesPrintsAnEmptyMapping() async throws {
        let original = try await load("listeners:\n  main:\n    address: \"127.0.0.1:8080\"\n")
        XCTAssertTrue(original.routes.isEmpty)
        let printed = EffectiveConfiguration.yaml(original)
        XCTAssertTrue(printed.contains("\nroutes: {}\n"), printed)
        let again = try await load(printed)
        XCTAssertEqual(original, again)
    }

    /// Found by the configuration fuzz target: a quoted value with a line break printed raw,
    /// and YAML folds raw line breaks in a quoted scalar (one becomes a space).
    func testPrintedStringsEscapeControlCharacters() async throws {
        let original = try await load(
            Self.minimal
                + "\n  work:\n    path: /work\n    kind: worker\n    worker:\n      command: /usr/bin/worker\n"
                + "      args: [\"a\\nb\", \"tab\\there\", \"cr\\r\\n\", \"\\u2028\"]\n"
        )
        let printed = EffectiveConfiguration.yaml(original)
        XCTAssertTrue(printed.contains(#"["a\nb", "tab\there", "cr\r\n", "\u2028"]"#), printed)
        let again = try await load(printed)
        XCTAssertEqual(original, again)
    }

    /// `auth`, secrets in files and inline, the admin token and `removed_route_grace` are printed
    /// too: loaded back it is the same configuration, but for inline secrets, which come back as
    /// `[redacted]` and load as secrets nobody knows (never as the text itself, never empty).
    func testAuthAndSecretsRoundTrip() async throws {
        let secretPath = try write("0123456789abcdef0123456789abcdef-from-a-file\n")
        let text =
            Self.minimal + """

                    auth:
                      hs256_secret_file: "\(secretPath)"
                      issuer: https://issuer.test
                      audience: [wssgate]
                      token_from: [header, query]
                  inline:
                    path: /inline
                    kind: echo
                    auth:
                      hs256_secret: "0123456789abcdef0123456789abcdef-inline"
                admin:
                  address: "127.0.0.1:9999"
                  token: "admin-token-0123456789"
                server:
                  removed_route_grace: 90s
                """
        let original = try await load(text)
        let printed = EffectiveConfiguration.yaml(original)
        XCTAssertFalse(printed.contains("abcdef-inline"), printed)
        XCTAssertFalse(printed.contains("admin-token-0123456789"))
        XCTAssertTrue(
            printed.hasPrefix("# Secrets are shown as \"[redacted]\" (admin.token, routes.inline.auth.hs256_secret)"),
            printed
        )
        XCTAssertTrue(printed.contains("removed_route_grace: 90s"))
        let again = try await load(printed)
        XCTAssertEqual(
            again.routes.first { $0.name == "echo" }?.auth,
            original.routes.first { $0.name == "echo" }?.auth
        )
        let redacted = try XCTUnwrap(again.routes.first { $0.name == "inline" }?.auth?.secrets.first)
        XCTAssertNotEqual(redacted, EffectiveConfiguration.redacted)
        XCTAssertGreaterThanOrEqual(redacted.utf8.count, 32)
        let third = try await load(printed)
        XCTAssertNotEqual(
            third.routes.first { $0.name == "inline" }?.auth?.secrets.first,
            redacted,
            "each load its own unknown secret"
        )
        XCTAssertEqual(EffectiveConfiguration.yaml(again), printed)
        // Everything else is the same.
        var masked = again
        masked.admin.token = original.admin.token
        masked.routes = again.routes.map { route in
            var route = route
            if route.name == "inline" { route.auth = original.routes.first { $0.name == "inline" }?.auth }
            return route
        }
        XCTAssertEqual(masked, original)
        XCTAssertEqual(original.server.removedRouteGrace, .seconds(90))
        let never = try await load(Self.minimal + "\nserver:\n  removed_route_grace: never\n")
        XCTAssertNil(never.server.removedRouteGrace)
    }

    /// The configurations users write — the shipped file, every complete example in the docs, and
    /// a fixture with every section and YAML's quoting forms — print exactly as recorded in
    /// `Fixtures/` (recorded with the YAML reader before the switch to libyaml, so the switch
    /// changes no effective configuration). `WSSGATE_RECORD_FIXTURES=1` records them again.
    func testConfigurationsPrintAsRecorded() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        func read(_ path: String) throws -> String {
            try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
        }
        var cases: [(String, String)] = [
            ("rootfs", try read("rootfs/etc/wssgate/wssgate.yaml")),
            ("everything", try String(contentsOf: fixtures.appendingPathComponent("everything.yaml"), encoding: .utf8)),
        ]
        // Complete examples in the docs (a listener and a route).
        for document in ["README.md", "docs/configuration.md", "docs/certificates.md"] {
            let text = try read(document)
            var index = 0
            for block in text.components(separatedBy: "```yaml\n").dropFirst() {
                guard let end = block.range(of: "```") else { continue }
                let yaml = String(block[..<end.lowerBound])
                guard yaml.contains("listeners:") && yaml.contains("routes:") else { continue }
                index += 1
                cases.append(("\(document.replacingOccurrences(of: "/", with: "_"))-\(index)", yaml))
            }
        }
        XCTAssertGreaterThanOrEqual(cases.count, 4)
        let record = ProcessInfo.processInfo.environment["WSSGATE_RECORD_FIXTURES"] == "1"
        for (name, yaml) in cases {
            let printed = EffectiveConfiguration.yaml(try await load(yaml))
            let path = fixtures.appendingPathComponent("\(name).effective.yaml")
            if record {
                try printed.write(to: path, atomically: true, encoding: .utf8)
            } else {
                let recorded = try String(contentsOf: path, encoding: .utf8)
                XCTAssertEqual(printed, recorded, "\(name) no longer prints as recorded")
            }
        }
    }
}

extension RouteConfiguration {
    /// The worker settings of a worker route, for assertions.
    fileprivate var worker: WorkerSettings? { if case .worker(let settings) = backend { settings } else { nil } }
    /// The proxy settings of a proxy route, for assertions.
    fileprivate var proxy: ProxySettings? { if case .proxy(let settings) = backend { settings } else { nil } }
}
