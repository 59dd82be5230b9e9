import GatewayCore
import GatewayHub
import NIOCore
import NIOHTTP1

/// Worker routes: their instances, and rolling deploys.
extension AdminAPI {
    /// `/v1/routes[/{name}[/deploy]]`: the worker routes, their instances, rolling deploys.
    func routesEndpoint(_ call: AdminCall) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let segments = call.segments
        switch segments.count {
        case 2:
            try call.only([.GET])
            try call.noQuery()
            let routes = (self.routes?.workerRoutes ?? []).map { AdminPayloads.WorkerRoute(status: $0) }
            return call.eventLoop.makeSucceededFuture(Self.json(.ok, AdminPayloads.WorkerRoutes(routes: routes)))
        case 3:
            try call.only([.GET])
            try call.noQuery()
            let name = call.decoded(2)
            guard let status = routes?.workerRoutes.first(where: { $0.route == name }) else {
                throw AdminError.notFound("no worker route named '\(name)'")
            }
            return call.eventLoop.makeSucceededFuture(Self.json(.ok, AdminPayloads.WorkerRoute(status: status)))
        case 4 where segments[3] == "deploy":
            try call.only([.POST])
            try call.noQuery()
            return call.eventLoop.makeSucceededFuture(try deploy(call.decoded(2), call.request))
        default:
            throw call.noSuchEndpoint
        }
    }

    /// `POST /v1/routes/{name}/deploy`: an empty body deploys the running command again; a body
    /// `{"command": …, "args": […], "env": ["NAME=value", …]}` deploys that one.
    func deploy(_ name: String, _ request: AdminRequest) throws(AdminError) -> AdminResponse {
        guard let routes else { throw AdminError.notFound("no worker route named '\(name)'") }
        var program: WorkerProgram?
        if request.body.readableBytes > 0 {
            let body = try Self.object(request)
            for key in body.keys.sorted() where !["command", "args", "env"].contains(key) {
                throw AdminError.invalidField(key, "unknown field '\(key)'; deploy takes command, args and env")
            }
            guard case .string(let command)? = body["command"], !command.isEmpty else {
                throw AdminError.invalidField("command", "command must be a non-empty string")
            }
            func strings(_ key: String) throws(AdminError) -> [String] {
                guard let value = body[key] else { return [] }
                guard case .array(let items) = value else {
                    throw AdminError.invalidField(key, "\(key) must be an array of strings")
                }
                var result: [String] = []
                for item in items {
                    guard case .string(let text) = item else {
                        throw AdminError.invalidField(key, "\(key) must be an array of strings")
                    }
                    result.append(text)
                }
                return result
            }
            let environment = try strings("env")
            if let bad = environment.first(where: { !$0.contains("=") || $0.hasPrefix("=") }) {
                throw AdminError.invalidField("env", "'\(bad)' is not NAME=value")
            }
            program = WorkerProgram(command: command, arguments: try strings("args"), environment: environment)
        }
        do {
            let status = try routes.deploy(route: name, command: program)
            return Self.json(.accepted, AdminPayloads.WorkerRoute(status: status))
        } catch {
            switch error.code {
            case .notFound: throw AdminError.notFound(error.message)
            case .conflict: throw AdminError(.conflict, code: "deploy_conflict", error.message)
            }
        }
    }
}
