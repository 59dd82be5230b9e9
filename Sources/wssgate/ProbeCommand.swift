import ArgumentParser
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small HTTP(S) GET for health checks: a scratch image has no curl.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "GET a URL; exit 0 on a 2xx status, 1 otherwise.",
        discussion: "For container health checks: wssgate probe https://127.0.0.1:8443/readyz --insecure"
    )

    @Argument(help: "http:// or https:// URL.")
    var url: String

    @Flag(help: "Do not verify the server's certificate (self-signed setups).")
    var insecure = false

    @Option(help: "Seconds to wait for the whole exchange.")
    var timeout: Double = 5

    func run() async throws {
        guard let target = ProbeTarget(url) else {
            printError("wssgate probe: cannot parse URL \(url)")
            throw ExitCode(2)
        }
        do {
            let status = try await HTTPProbe.get(
                target,
                insecure: insecure,
                timeout: .milliseconds(Int64(timeout * 1000))
            )
            print("\(status)")
            if !(200..<300).contains(status) { throw ExitCode(1) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("wssgate probe: \(error)")
            throw ExitCode(1)
        }
    }
}

struct ProbeTarget {
    var tls: Bool
    var host: String
    var port: Int
    var path: String

    init?(_ url: String) {
        let rest: Substring
        if url.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst(8)
        } else if url.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst(7)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" }
        path = rest.dropFirst(authority.count).isEmpty ? "/" : String(rest.dropFirst(authority.count))
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            port = after.hasPrefix(":") ? (Int(after.dropFirst()) ?? -1) : (tls ? 443 : 80)
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            port = Int(authority[authority.index(after: colon)...]) ?? -1
        } else {
            host = String(authority)
            port = tls ? 443 : 80
        }
        if host.isEmpty || !(1...65535).contains(port) { return nil }
    }
}

enum HTTPProbe {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func get(_ target: ProbeTarget, insecure: Bool, timeout: TimeAmount) async throws -> Int {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Int.self)
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if insecure { tlsConfiguration.certificateVerification = .none }
        let sslContext = target.tls ? try NIOSSLContext(configuration: tlsConfiguration) : nil
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext {
                        let serverName =
                            target.host.contains(":") || target.host.allSatisfy({ $0.isNumber || $0 == "." })
                            ? nil : target.host
                        try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try pipeline.addHTTPClientHandlers()
                    try pipeline.addHandler(ProbeHandler(target: target, promise: promise))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            promise.fail(error)
            throw error
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure(description: "timed out"))
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await promise.futureResult.get()
    }
}

private final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let target: ProbeTarget
    let promise: EventLoopPromise<Int>

    init(target: ProbeTarget, promise: EventLoopPromise<Int>) {
        self.target = target
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        let host = target.host.contains(":") ? "[\(target.host)]:\(target.port)" : "\(target.host):\(target.port)"
        let head = HTTPRequestHead(
            version: .http1_1,
            method: .GET,
            uri: target.path,
            headers: ["Host": host, "User-Agent": "wssgate-probe", "Connection": "close"]
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            promise.succeed(Int(head.status.code))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(HTTPProbe.Failure(description: "connection closed before a response"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
