// swift-tools-version: 6.1
import PackageDescription

/// Micro-benchmarks of the data path (`swift package benchmark`, or `make micro-bench`): its own
/// package, so the gateway's build and `make test` never compile the benchmark harness.
let package = Package(
    name: "wssgate-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "wssgate", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "DataPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WorkerProtocol", package: "wssgate"),
                .product(name: "GatewayWebSocket", package: "wssgate"),
                .product(name: "GatewayHub", package: "wssgate"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/DataPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
