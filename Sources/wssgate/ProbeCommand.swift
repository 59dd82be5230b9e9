import ArgumentParser
import NIOCore

/// A small HTTP(S) GET, or one WebSocket round trip, for health checks and first tries: a
/// scratch image has no curl and no WebSocket client.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "GET an http(s) URL (exit 0 on a 2xx status), or send a ws(s) URL one message and print the answer.",
        discussion: """
            For container health checks: wssgate probe https://127.0.0.1:8443/readyz --insecure
            A route end to end: wssgate probe wss://localhost:8443/echo --insecure --send hello
            """
    )

    @Argument(help: "http://, https://, ws:// or wss:// URL.")
    var url: String

    @Option(help: ArgumentHelp("The text a ws(s):// probe sends.", valueName: "text"))
    var send = "ping"

    @Flag(help: "Do not verify the server's certificate (self-signed setups).")
    var insecure = false

    @Option(
        help: ArgumentHelp("Trust the CAs in this PEM file instead of the system's (a private CA).", valueName: "file")
    )
    var ca: String?

    @Option(help: "Seconds to wait for the whole exchange.")
    var timeout: Double = 5

    func run() async throws {
        guard let target = ProbeTarget(url) else {
            printError("wssgate probe: cannot parse URL \(url)")
            throw ExitCode(2)
        }
        if target.webSocket {
            let probe = WebSocketProbe(
                host: target.host,
                port: target.port,
                path: target.path,
                tls: target.tls ? HTTPExchange.TLSOptions(insecure: insecure, caFile: ca) : nil,
                timeout: .milliseconds(Int64(timeout * 1000))
            )
            do {
                print(String(buffer: try await probe.exchange(send)))
            } catch {
                printError("wssgate probe: \(error)")
                throw ExitCode(1)
            }
            return
        }
        var exchange = HTTPExchange(
            endpoint: .tcp(
                host: target.host,
                port: target.port,
                tls: target.tls ? HTTPExchange.TLSOptions(insecure: insecure, caFile: ca) : nil
            )
        )
        exchange.path = target.path
        exchange.timeout = .milliseconds(Int64(timeout * 1000))
        let status: Int
        do {
            status = try await exchange.send().status
        } catch {
            printError("wssgate probe: \(error)")
            throw ExitCode(1)
        }
        print("\(status)")
        if !(200..<300).contains(status) { throw ExitCode(1) }
    }
}

struct ProbeTarget {
    var tls: Bool
    var webSocket = false
    var host: String
    var port: Int
    var path: String

    init?(_ url: String) {
        let rest: Substring
        guard let scheme = ["https://", "http://", "wss://", "ws://"].first(where: url.hasPrefix) else { return nil }
        tls = scheme == "https://" || scheme == "wss://"
        webSocket = scheme.hasPrefix("ws")
        rest = url.dropFirst(scheme.count)
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
