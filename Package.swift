// swift-tools-version: 6.1
import PackageDescription

/// Every target compiles in Swift 6 mode with strict concurrency; `ExistentialAny` and
/// `MemberImportVisibility` keep existentials and imports explicit.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// Modules off the data path (configuration, certificates, ACME, the admin API, JWT checks on
/// upgrade, the command line) are optimised for size in release builds: measured with
/// `make size`, 0.08 MB of our modules, at no cost to messages. The data path (edge, WebSocket,
/// workers, hub, proxy, cluster) keeps `-O`: `-Osize` everywhere (swift-nio included) cost the
/// 4 KiB echo round trip 15–44% more CPU (docs/architecture.md, the static binary). None of
/// these is in a library product, so packages that use WSSGateWorker or Benchmarks/ never see
/// the flag.
let offPathSettings: [SwiftSetting] =
    swiftSettings + [
        .unsafeFlags(["-Osize"], .when(configuration: .release))
    ]

let package = Package(
    name: "wssgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "wssgate", targets: ["wssgate"]),
        .library(name: "WSSGateWorker", targets: ["WSSGateWorker"]),
        // For Benchmarks/ (its own package): the data path's pieces, measured one by one.
        .library(name: "WorkerProtocol", targets: ["WorkerProtocol"]),
        .library(name: "GatewayWebSocket", targets: ["GatewayWebSocket"]),
        .library(name: "GatewayHub", targets: ["GatewayHub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        // No traits: the JSON and YAML snapshots pull in full Foundation (JSONSerialization, and
        // Yams' NSRegularExpression and formatters), and with it 37 MB of ICU. The file is read
        // by libyaml (CYAML) instead; the providers for flags and environment stay.
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: []),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
    ],
    targets: [
        // Pure model: configuration values, limits, route table. No I/O.
        .target(
            name: "GatewayCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // libyaml, the reference C YAML parser, found by pkg-config (libyaml-dev has libyaml.a).
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // glibc's malloc.h, for malloc_trim (memory of closed connections given back).
        .systemLibrary(name: "CMalloc"),
        // glibc's posix_spawn_file_actions_addclosefrom_np: workers start with no descriptor of the gateway's.
        .systemLibrary(name: "CSpawn"),
        // Reads YAML + environment + flags into a validated `GatewayConfiguration`.
        .target(
            name: "GatewayConfigLoader",
            dependencies: [
                "GatewayCore",
                "CYAML",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: offPathSettings
        ),
        // Certificates: PEM loading, self-signed generation, the NIOSSL context.
        .target(
            name: "GatewayTLS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                "GatewayCore",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: offPathSettings
        ),
        // One WebSocket connection: RFC 6455 rules on top of NIOWebSocket's frame codec,
        // RFC 7692 on top of CompressNIO's zlib streams.
        .target(
            name: "GatewayWebSocket",
            dependencies: [
                "GatewayMetrics",
                "GatewayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The in-process topic router.
        .target(
            name: "GatewayHub",
            dependencies: [
                "GatewayCore",
                "GatewayWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Worker routes: pools of worker processes over Unix sockets, their supervision.
        .target(
            name: "GatewayWorkers",
            dependencies: [
                "CSpawn",
                "GatewayMetrics",
                "GatewayCore",
                "GatewayHub",
                "GatewayWebSocket",
                "WorkerProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Proxy routes: pass-through to an upstream WebSocket server.
        // Metric handles (swift-metrics); the executable bootstraps swift-prometheus behind them.
        .target(
            name: "GatewayMetrics",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Authentication on upgrade: JWTs checked with jwt-kit.
        .target(
            name: "GatewayAuth",
            dependencies: [
                "PercentEncoding",
                "GatewayCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: offPathSettings
        ),
        .target(
            name: "GatewayAdmin",
            dependencies: [
                "PercentEncoding",
                "GatewayCore",
                "GatewayHub",
                "GatewayWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: offPathSettings
        ),
        .target(
            name: "ProxyProtocol",
            dependencies: ["GatewayCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatewayProxy",
            dependencies: [
                "ReadableErrors",
                "GatewayCore",
                "GatewayWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // `http` routes: a connection's events as HTTP requests to the app, its answers' commands.
        .target(
            name: "GatewayHTTPBackend",
            dependencies: [
                "ReadableErrors",
                "GatewayCore",
                "GatewayHub",
                "GatewayMetrics",
                "GatewayWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Listeners, HTTP/1.1, the upgrade, health endpoints.
        .target(
            name: "GatewayEdge",
            dependencies: [
                "ReadableErrors",
                "PercentEncoding",
                "GatewayAuth",
                .product(name: "NIOTLS", package: "swift-nio"),
                "GatewayMetrics",
                "GatewayCore",
                "GatewayTLS",
                "GatewayWebSocket",
                "ProxyProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Errors of NIO and BoringSSL as sentences for an operator (no build paths, no type dumps).
        .target(
            name: "ReadableErrors",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // systemd's protocols (sd_notify, socket activation, watchdog), spoken natively.
        // ACME (RFC 8555): obtains and renews listener certificates; its own small HTTPS client.
        .target(
            name: "GatewayACME",
            dependencies: [
                "GatewayCore",
                "GatewayTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: offPathSettings
        ),
        .target(name: "Systemd", swiftSettings: swiftSettings),
        // This gateway as a node of a cluster: topics, connections and presence through Redis.
        .target(
            name: "GatewayCluster",
            dependencies: [
                "GatewayCore",
                "GatewayHub",
                "GatewayMetrics",
                "GatewayWebSocket",
                "RedisClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small, strict RESP3 client for Redis/Valkey (no maintained one is mirrored here).
        .target(
            name: "RedisClient",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // `%XX` escapes in request targets and queries, decoded one way everywhere (a leaf).
        .target(
            name: "PercentEncoding",
            swiftSettings: swiftSettings
        ),
        // The frame codec of the worker protocol, shared by the gateway and worker libraries.
        .target(
            name: "WorkerProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // A library for writing workers in Swift.
        .target(
            name: "WSSGateWorker",
            dependencies: [
                "WorkerProtocol",
                "PercentEncoding",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The example workers, run as `wssgate worker chat|echo` (one binary, one runtime).
        .target(name: "ExampleWorkers", dependencies: ["WSSGateWorker"], swiftSettings: swiftSettings),
        // Log output formats (logfmt, JSON) for swift-log.
        .target(
            name: "GatewayLogging",
            dependencies: [
                "GatewayCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "wssgate",
            dependencies: [
                "ReadableErrors",
                "CMalloc",
                "GatewayAuth",
                "GatewayMetrics",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                "GatewayCore",
                "GatewayConfigLoader",
                "GatewayTLS",
                "GatewayEdge",
                "GatewayHub",
                "GatewayWorkers",
                "GatewayHTTPBackend",
                "GatewayProxy",
                "GatewayAdmin",
                "GatewayCluster",
                "GatewayACME",
                "GatewayWebSocket",
                "Systemd",
                "GatewayLogging",
                "ExampleWorkers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: offPathSettings
        ),
        .testTarget(
            name: "GatewayCoreTests",
            dependencies: [
                "GatewayCore", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayConfigLoaderTests",
            dependencies: ["GatewayConfigLoader", "GatewayCore", .product(name: "NIOWebSocket", package: "swift-nio")],
            // Read by path (#filePath) as the tests' own data, not bundled.
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayTLSTests",
            dependencies: [
                "GatewayTLS", "GatewayCore",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SessionTestSupport",
            dependencies: [
                "GatewayWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Tests/SessionTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayWebSocketTests",
            dependencies: [
                "GatewayWebSocket", "GatewayCore", "SessionTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayEdgeTests",
            dependencies: [
                "GatewayEdge", "GatewayCore", "GatewayTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RedisClientTests",
            dependencies: [
                "RedisClient",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The executable's own rules (reload, limits); the end-to-end suite runs the binary.
        .testTarget(
            name: "wssgateTests",
            dependencies: ["wssgate", "GatewayCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayWorkersTests",
            dependencies: [
                "GatewayWorkers", "WSSGateWorker", "GatewayCore", "GatewayHub", "GatewayWebSocket", "WorkerProtocol",
                "SessionTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WSSGateWorkerTests",
            dependencies: [
                "WSSGateWorker", "WorkerProtocol",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExampleWorkersTests",
            dependencies: [
                "ExampleWorkers", "WorkerProtocol",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProxyProtocolTests",
            dependencies: ["ProxyProtocol"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayHTTPBackendTests",
            dependencies: [
                "GatewayHTTPBackend", "GatewayCore", "GatewayHub", "GatewayWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayProxyTests",
            dependencies: [
                "GatewayProxy", "GatewayCore", "GatewayWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayClusterTests",
            dependencies: [
                "GatewayCluster", "GatewayWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PercentEncodingTests",
            dependencies: ["PercentEncoding"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkerProtocolTests",
            dependencies: [
                "WorkerProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayHubTests",
            dependencies: [
                "GatewayHub", "GatewayWebSocket", .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayAdminTests",
            dependencies: [
                "GatewayAdmin", "GatewayHub", "GatewayWebSocket", "GatewayCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayMetricsTests",
            dependencies: [
                "GatewayMetrics",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayAuthTests",
            dependencies: [
                "GatewayAuth", "GatewayCore", .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayACMETests",
            dependencies: [
                "GatewayACME", "GatewayCore", "GatewayTLS",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SystemdTests", dependencies: ["Systemd"], swiftSettings: swiftSettings),
        // The fuzz targets, one per parser (Fuzz/README.md); the suite replays their corpora.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "GatewayACME", "GatewayAuth", "GatewayConfigLoader", "GatewayCore", "GatewayEdge", "GatewayHTTPBackend",
                "GatewayHub",
                "GatewayTLS",
                "GatewayWebSocket", "PercentEncoding", "ProxyProtocol", "RedisClient", "WorkerProtocol",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Fuzz/Targets",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FuzzTargetsTests",
            dependencies: ["FuzzTargets", "SessionTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ReadableErrorsTests",
            dependencies: [
                "ReadableErrors",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayLoggingTests",
            dependencies: ["GatewayLogging", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

/// libFuzzer's driver, only when `make fuzz` asks for it (`WSSGATE_FUZZ=1`): it links only
/// with `-sanitize=fuzzer`, which ordinary builds do not use.
if Context.environment["WSSGATE_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "wssgate-fuzz",
            dependencies: ["FuzzTargets"],
            path: "Fuzz/Driver",
            swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]
        )
    )
}
