import ArgumentParser
import GatewayAuth
import GatewayConfigLoader
import GatewayCore
import GatewayEdge
import GatewayTLS
import GatewayWorkers
import NIOSSL

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A configuration with its certificates loaded: everything checked before anything binds.
struct PreparedGateway {
    var configuration: GatewayConfiguration
    var tls: [String: ServerTLS]
    /// Token verifiers of routes with `auth` (their keys parsed).
    var verifiers: [String: JWTVerifier]

    /// Loads and checks; on any problem prints it and exits with status 2, so the gateway never
    /// starts half-configured.
    /// The loader `run`, `check-config` and reloads use: the file, or the embedded default with the
    /// demo page when its folder is found.
    static func loader(filePath: String?, overrides: [String], activatedSockets: [String] = []) -> ConfigurationLoader {
        ConfigurationLoader(
            filePath: filePath,
            environment: environment(),
            overrides: overrides,
            activatedSockets: activatedSockets,
            demoRoot: filePath == nil ? demoRoot() : nil
        )
    }

    static func demoRoot() -> String? {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let directory = String(own[..<(own.lastIndex(of: "/") ?? own.endIndex)])
        let candidates = EmbeddedDefault.demoCandidates(
            executableDirectory: directory,
            workingDirectory: FileManager.default.currentDirectoryPath
        )
        for candidate in candidates where fileType(candidate + "/index.html") == S_IFREG {
            guard let resolved = realpath(candidate, nil) else { continue }
            defer { free(resolved) }
            return String(cString: resolved)
        }
        return nil
    }

    /// `S_IFREG`, `S_IFDIR`… of a path, or nil when it does not exist.
    static func fileType(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    static func load(
        filePath: String?,
        overrides: [String],
        activatedSockets: [String] = []
    ) async throws -> PreparedGateway {
        do {
            let loader = loader(filePath: filePath, overrides: overrides, activatedSockets: activatedSockets)
            let configuration = try await loader.load()
            var tls: [String: ServerTLS] = [:]
            for listener in configuration.listeners {
                guard let settings = listener.tls else { continue }
                do {
                    let material = try ServerTLS.material(for: settings)
                    tls[listener.name] = try ServerTLS(material: material, settings: settings)
                } catch let error as TLSMaterialError {
                    let code: ConfigurationError.Code = error.code == .unreadable ? .fileUnreadable : .invalidPEM
                    let key = settingsKey(listener: listener.name, settings: settings, field: error.field)
                    throw ConfigurationError(code, key: key, error.message)
                } catch let error as ConfigurationError {
                    throw error
                } catch {
                    throw ConfigurationError(.invalidValue, key: "listeners.\(listener.name).tls", "\(error)")
                }
            }
            // ACME: the CA bundle must load, and the storage must be creatable and writable, now
            // rather than at the first order.
            for listener in configuration.listeners {
                guard let acme = listener.tls?.acme else { continue }
                let base = "listeners.\(listener.name).tls.acme"
                if let bundle = acme.caBundle {
                    guard let certificates = try? NIOSSLCertificate.fromPEMFile(bundle), !certificates.isEmpty else {
                        throw ConfigurationError(
                            .invalidPEM,
                            key: "\(base).ca_bundle",
                            "\(bundle) holds no readable PEM certificate"
                        )
                    }
                }
                if let problem = storageProblem(acme.storage) {
                    throw ConfigurationError(.fileUnreadable, key: "\(base).storage", problem)
                }
            }
            // A static route's folder must exist.
            for route in configuration.routes {
                guard case .static(let files) = route.backend, files.root != StaticSettings.builtinDemo else {
                    continue
                }
                guard fileType(files.root) == S_IFDIR else {
                    throw ConfigurationError(
                        .fileUnreadable,
                        key: "routes.\(route.name).static.root",
                        "'\(files.root)' is not a folder"
                    )
                }
            }
            // A supervised worker's command must exist and be executable now, not at the first
            // restart.
            for route in configuration.routes {
                guard case .worker(let worker) = route.backend, case .supervised(let command, _, _, _) = worker.source
                else {
                    continue
                }
                let path = WorkerProcess.resolve(command)
                guard access(path, X_OK) == 0 else {
                    throw ConfigurationError(
                        .fileUnreadable,
                        key: "routes.\(route.name).worker.command",
                        "'\(command)' is not an executable file (looked for \(path))"
                    )
                }
            }
            let verifiers = try await LiveSettings.verifiers(for: configuration.routes)
            return PreparedGateway(configuration: configuration, tls: tls, verifiers: verifiers)
        } catch let error as ConfigurationError {
            CommandLog.refused(error, filePath: filePath, overrides: overrides)
            throw ExitCode(2)
        }
    }

    /// Why the ACME storage folder could not be used, or nil: it must be a writable folder, or
    /// not exist yet under one (the gateway creates it).
    static func storageProblem(_ path: String) -> String? {
        var candidate = path
        while true {
            if let type = fileType(candidate) {
                guard type == S_IFDIR else { return "'\(candidate)' is not a folder" }
                guard access(candidate, W_OK | X_OK) == 0 else {
                    return candidate == path
                        ? "'\(path)' is not writable" : "'\(path)' cannot be created: '\(candidate)' is not writable"
                }
                return nil
            }
            guard let slash = candidate.lastIndex(of: "/"), slash != candidate.startIndex else { return nil }
            candidate = String(candidate[..<slash])
        }
    }

    private static func settingsKey(listener: String, settings: TLSSettings, field: TLSMaterialError.Field) -> String {
        if case .selfSigned = settings.source, field == .certificate || field == .key {
            return "listeners.\(listener).tls.self_signed"
        }
        return "listeners.\(listener).tls.\(field.path)"
    }

    static func environment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

func printError(_ text: String) {
    var line = Array((text + "\n").utf8)
    _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}
