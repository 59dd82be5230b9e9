import GatewayCore
import RedisClient
import NIOCore

/// Prints a configuration as the YAML that would produce it, every default spelled out:
/// what `wssgate check-config` shows.
///
/// Everything the loader reads is printed, so the output loads as the same configuration —
/// except secrets written inline (HS256 secrets, the admin token, the ACME EAB key), which are
/// printed as `[redacted]`: loaded like that they stand for a secret nobody knows, so the route
/// or API still refuses what needs it. Secrets read from files are printed as their paths.
public enum EffectiveConfiguration {
    /// What an inline secret is printed as.
    public static let redacted = "[redacted]"

    public static func yaml(_ configuration: GatewayConfiguration) -> String {
        var out = ""
        var redactedKeys: [String] = []
        func line(_ indent: Int, _ text: String) { out += String(repeating: "  ", count: indent) + text + "\n" }
        func duration(_ amount: TimeAmount) -> String { ValueParsing.format(amount) }
        func quoted(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        line(0, "log:")
        line(1, "level: \(configuration.log.level.rawValue)")
        line(1, "format: \(configuration.log.format.rawValue)")
        line(1, "redact_parameters: [\(configuration.log.redactParameters.map(quoted).joined(separator: ", "))]")
        line(0, "server:")
        line(1, "threads: \(configuration.server.threads)")
        line(1, "drain_timeout: \(duration(configuration.server.drainTimeout))")
        line(1, "drain_spread: \(duration(configuration.server.drainSpread))")
        line(1, "removed_route_grace: \(configuration.server.removedRouteGrace.map(duration) ?? "never")")
        line(0, "http:")
        line(1, "max_header_bytes: \(configuration.http.maxHeaderBytes)")
        line(1, "header_timeout: \(duration(configuration.http.headerTimeout))")
        line(1, "idle_timeout: \(duration(configuration.http.idleTimeout))")
        let limits = configuration.limits
        line(0, "limits:")
        line(1, "max_connections: \(limits.maxConnections)")
        line(1, "max_connections_per_ip: \(limits.maxConnectionsPerIP)")
        line(1, "connections_per_second_per_ip: \(limits.connectionsPerSecondPerIP)")
        line(1, "connection_burst_per_ip: \(limits.connectionBurstPerIP)")
        line(1, "trusted_proxies: [\(limits.trustedProxies.map { quoted($0.description) }.joined(separator: ", "))]")
        line(0, "admin:")
        if configuration.admin.isExplicit {
            line(1, "address: \(quoted(configuration.admin.address?.description ?? "off"))")
        } else {
            // Left unset, the default socket is optional (a warning when it cannot be made):
            // spelling it out would make it required.
            line(1, "# address: \(quoted(AdminSettings.defaultAddress.description)) (the default)")
        }
        if let file = configuration.admin.tokenFile {
            line(1, "token_file: \(quoted(file))")
        } else if configuration.admin.token != nil {
            line(1, "token: \(quoted(redacted))")
            redactedKeys.append("admin.token")
        }
        if let cluster = configuration.cluster {
            line(0, "cluster:")
            line(1, "redis: \(quoted(RedisEndpoint.redacted(cluster.redis)))")
            line(1, "node: \(quoted(cluster.node))")
            line(1, "node_number: \(cluster.nodeNumber)")
            line(1, "presence_ttl: \(duration(cluster.presenceTTL))")
            line(1, "degraded_readiness: \(cluster.degradedReadiness.rawValue)")
            line(1, "request_timeout: \(duration(cluster.requestTimeout))")
            line(1, "prefix: \(quoted(cluster.prefix))")
        }
        line(0, "listeners:")
        for listener in configuration.listeners {
            line(1, "\(listener.name):")
            line(2, "address: \(quoted(listener.address.description))")
            if let port = listener.redirectHTTPSPort { line(2, "redirect_https: \(port)") }
            if let tls = listener.tls {
                line(2, "tls:")
                switch tls.source {
                case .files(let certificate, let key):
                    line(3, "certificate: \(quoted(certificate))")
                    line(3, "key: \(quoted(key))")
                case .selfSigned(let names):
                    line(3, "self_signed: [\(names.map(quoted).joined(separator: ", "))]")
                case .acme(let acme):
                    line(3, "acme:")
                    line(4, "directory: \(quoted(acme.directory))")
                    if let email = acme.email { line(4, "email: \(quoted(email))") }
                    line(4, "domains: [\(acme.domains.map(quoted).joined(separator: ", "))]")
                    line(4, "storage: \(quoted(acme.storage))")
                    if let bundle = acme.caBundle { line(4, "ca_bundle: \(quoted(bundle))") }
                    line(4, "challenges: [\(acme.challenges.map { quoted($0.rawValue) }.joined(separator: ", "))]")
                    if let keyID = acme.externalAccountKeyID { line(4, "eab_kid: \(quoted(keyID))") }
                    // The HMAC key is a secret: never printed.
                    if acme.externalAccountHMACKey != nil {
                        line(4, "eab_hmac_key: \(quoted(redacted))")
                        redactedKeys.append("listeners.\(listener.name).tls.acme.eab_hmac_key")
                    }
                    line(4, "retry_initial: \(ValueParsing.format(acme.retryInitial))")
                    line(4, "retry_max: \(ValueParsing.format(acme.retryMax))")
                }
                line(3, "min_version: \(quoted(tls.minimumVersion.rawValue))")
                if !tls.additional.isEmpty {
                    line(3, "certificates:")
                    for entry in tls.additional {
                        line(4, "\(entry.name):")
                        line(5, "certificate: \(quoted(entry.certificate))")
                        line(5, "key: \(quoted(entry.key))")
                    }
                }
                line(3, "client_certificates: \(tls.clientCertificates.rawValue)")
                if let ca = tls.clientCA { line(3, "client_ca: \(quoted(ca))") }
                if let hsts = tls.hsts { line(3, "hsts: \(quoted(hsts))") }
            }
        }
        line(0, "routes:")
        for route in configuration.routes {
            line(1, "\(route.name):")
            line(2, "path: \(quoted(route.path))")
            line(2, "kind: \(route.kind.rawValue)")
            line(2, "subprotocols: [\(route.subprotocols.map(quoted).joined(separator: ", "))]")
            line(2, "origins: [\(route.origins.allowed.map(quoted).joined(separator: ", "))]")
            line(2, "require_subprotocol: \(route.requireSubprotocol)")
            line(2, "max_message_bytes: \(route.limits.maxMessageBytes)")
            line(2, "ping_interval: \(duration(route.limits.pingInterval))")
            line(2, "pong_timeout: \(duration(route.limits.pongTimeout))")
            line(2, "idle_timeout: \(duration(route.limits.idleTimeout))")
            line(2, "close_timeout: \(duration(route.limits.closeTimeout))")
            line(2, "send_queue_bytes: \(route.limits.sendQueueBytes)")
            line(2, "send_queue_overflow: \(route.limits.overflow.rawValue)")
            line(2, "overflow_close_code: \(route.limits.overflowCloseCode)")
            line(2, "max_messages_per_second: \(route.limits.maxMessagesPerSecond)")
            line(2, "message_burst: \(route.limits.messageBurst)")
            let c = route.compression
            line(2, "compression:")
            line(3, "enabled: \(c.enabled)")
            line(3, "server_no_context_takeover: \(c.serverNoContextTakeover)")
            line(3, "client_no_context_takeover: \(c.clientNoContextTakeover)")
            line(3, "server_max_window_bits: \(c.serverMaxWindowBits)")
            line(3, "client_max_window_bits: \(c.clientMaxWindowBits)")
            line(3, "level: \(c.level)")
            line(3, "memory_level: \(c.memoryLevel)")
            line(3, "min_message_bytes: \(c.minMessageBytes)")
            if let auth = route.auth {
                line(2, "auth:")
                if let file = auth.secretFile {
                    line(3, "hs256_secret_file: \(quoted(file))")
                } else if !auth.secrets.isEmpty {
                    line(3, "hs256_secret: \(quoted(redacted))")
                    redactedKeys.append("routes.\(route.name).auth.hs256_secret")
                }
                if !auth.publicKeys.isEmpty { line(3, "public_keys: [\(auth.publicKeys.map { quoted($0.path) }.joined(separator: ", "))]") }
                if let jwks = auth.jwks { line(3, "jwks_file: \(quoted(jwks.path))") }
                line(3, "algorithms: [\(auth.algorithms.map { quoted($0.rawValue) }.joined(separator: ", "))]")
                if let issuer = auth.issuer { line(3, "issuer: \(quoted(issuer))") }
                line(3, "audience: [\(auth.audiences.map(quoted).joined(separator: ", "))]")
                line(3, "leeway: \(duration(auth.leeway))")
                line(3, "token_from: [\(auth.sources.map { quoted($0.rawValue) }.joined(separator: ", "))]")
                line(3, "cookie: \(quoted(auth.cookieName))")
                line(3, "query_parameter: \(quoted(auth.queryParameter))")
                line(3, "protocol_prefix: \(quoted(auth.protocolPrefix))")
            }
            if let files = route.files {
                line(2, "static:")
                line(3, "root: \(quoted(files.root))")
                line(3, "index: \(quoted(files.index))")
            }
            if let hub = route.hub {
                line(2, "hub:")
                line(3, "subscribe: [\(hub.subscribe.map(quoted).joined(separator: ", "))]")
                line(3, "publish: [\(hub.publish.map(quoted).joined(separator: ", "))]")
            }
            if let proxy = route.proxy {
                line(2, "proxy:")
                switch proxy.upstream {
                case .tcp:
                    line(3, "upstream: \(quoted("ws://\(proxy.hostHeader)\(proxy.path)"))")
                case .unix(let path):
                    line(3, "upstream: \(quoted("unix:\(path)#\(proxy.path)"))")
                }
                line(3, "connect_timeout: \(duration(proxy.connectTimeout))")
                line(3, "handshake_timeout: \(duration(proxy.handshakeTimeout))")
            }
            if let worker = route.worker {
                line(2, "worker:")
                switch worker.source {
                case .supervised(let command, let arguments, let environment, let instances):
                    line(3, "command: \(quoted(command))")
                    line(3, "args: [\(arguments.map(quoted).joined(separator: ", "))]")
                    line(3, "env: [\(environment.map(quoted).joined(separator: ", "))]")
                    line(3, "instances: \(instances)")
                case .external(let socket):
                    line(3, "socket: \(quoted(socket))")
                }
                if !worker.socketDirectory.isEmpty { line(3, "socket_dir: \(quoted(worker.socketDirectory))") }
                line(3, "authorize: \(worker.authorize)")
                line(3, "authorize_timeout: \(duration(worker.authorizeTimeout))")
                line(3, "resume_timeout: \(duration(worker.resumeTimeout))")
                line(3, "forward_headers: [\(worker.forwardHeaders.map(quoted).joined(separator: ", "))]")
                line(3, "allowed_uids: [\(worker.allowedUIDs.map(String.init).joined(separator: ", "))]")
                line(3, "stop_timeout: \(duration(worker.stopTimeout))")
            }
        }
        guard !redactedKeys.isEmpty else { return out }
        // Said first, so nobody mistakes this text for a copy of the file.
        return "# Secrets are shown as \"\(redacted)\" (\(redactedKeys.joined(separator: ", "))): keep the original file.\n"
            + "# Loaded as it is, this text stands for secrets nobody knows: what needs them is refused.\n" + out
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
