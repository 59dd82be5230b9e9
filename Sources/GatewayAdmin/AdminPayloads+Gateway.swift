import GatewayCore
import GatewayHub
import GatewayWebSocket

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the gateway-wide endpoints answer: overview, status, reload, cluster, certificates, worker routes.
extension AdminPayloads {
    struct Overview: Encodable {
        struct Listener: Encodable {
            var name: String
            var address: String
            var tls: Bool
        }
        struct Route: Encodable {
            var name: String
            var path: String
            var kind: String
            var connections: Int
        }
        var node: String?
        var readiness: String
        var connections: Int
        var listeners: [Listener]
        var routes: [Route]
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(node, forKey: .node)
            try container.encode(readiness, forKey: .readiness)
            try container.encode(connections, forKey: .connections)
            try container.encode(listeners, forKey: .listeners)
            try container.encode(routes, forKey: .routes)
        }
        enum CodingKeys: String, CodingKey { case node, readiness, connections, listeners, routes }
    }

    /// `POST /v1/reload` applied: what changed.
    struct Reloaded: Encodable {
        var reloaded = true
        var changes: [String]
    }

    struct Status: Encodable {
        var readiness: String
        /// Always present: null when nothing is missing.
        var degraded: String?
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(readiness, forKey: .readiness)
            try container.encode(degraded, forKey: .degraded)
        }
        enum CodingKeys: String, CodingKey { case readiness, degraded }
    }

    struct Cluster: Encodable {
        struct Node: Encodable {
            var name: String
            var number: Int
        }
        var node: String
        var number: Int
        var linked: Bool
        var nodes: [Node]
    }

    /// `GET /v1/certificates`: every certificate kept by ACME (absent fields are null).
    struct Certificates: Encodable {
        struct Entry: Encodable {
            var listeners: [String]
            var domains: [String]
            var directory: String
            var state: String
            var notAfter: String?
            var nextAttempt: String?
            var issued: Int
            var failures: Int
            var lastError: String?

            enum CodingKeys: String, CodingKey {
                case listeners, domains, directory, state, issued, failures
                case notAfter = "not_after"
                case nextAttempt = "next_attempt"
                case lastError = "last_error"
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(listeners, forKey: .listeners)
                try container.encode(domains, forKey: .domains)
                try container.encode(directory, forKey: .directory)
                try container.encode(state, forKey: .state)
                try container.encode(notAfter, forKey: .notAfter)
                try container.encode(nextAttempt, forKey: .nextAttempt)
                try container.encode(issued, forKey: .issued)
                try container.encode(failures, forKey: .failures)
                try container.encode(lastError, forKey: .lastError)
            }
        }
        var certificates: [Entry]

        init(statuses: [CertificateStatus]) {
            certificates = statuses.map { status in
                Entry(
                    listeners: status.listeners,
                    domains: status.domains,
                    directory: status.directory,
                    state: status.state.rawValue,
                    notAfter: status.notAfter.map(Self.timestamp),
                    nextAttempt: status.nextAttempt.map(Self.timestamp),
                    issued: status.issued,
                    failures: status.failures,
                    lastError: status.lastError
                )
            }
        }

        /// RFC 3339 in UTC, whole seconds.
        static func timestamp(_ date: Date) -> String {
            date.formatted(.iso8601)
        }
    }

    /// `POST /v1/certificates/renew`: the listeners whose certificate is being renewed.
    struct Renewing: Encodable {
        var listeners: [String]
    }

    /// A worker route (`GET /v1/routes/{name}`, and each of `GET /v1/routes`).
    struct WorkerRoute: Encodable {
        var status: WorkerRouteStatus

        enum CodingKeys: String, CodingKey { case route, command, args, instances, connections, deployment }
        enum InstanceKeys: String, CodingKey { case name, pid, state, connections }
        enum DeploymentKeys: String, CodingKey {
            case number, phase, command, args, from, to, moving, remaining, forced, error
            case startedAt = "started_at"
            case finishedAt = "finished_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(status.route, forKey: .route)
            try container.encode(status.command, forKey: .command)
            try container.encode(status.arguments, forKey: .args)
            try container.encode(status.connections, forKey: .connections)
            var instances = container.nestedUnkeyedContainer(forKey: .instances)
            for instance in status.instances {
                var entry = instances.nestedContainer(keyedBy: InstanceKeys.self)
                try entry.encode(instance.name, forKey: .name)
                try entry.encode(instance.pid, forKey: .pid)
                try entry.encode(instance.state.rawValue, forKey: .state)
                try entry.encode(instance.connections, forKey: .connections)
            }
            guard let deployment = status.deployment else {
                try container.encodeNil(forKey: .deployment)
                return
            }
            var entry = container.nestedContainer(keyedBy: DeploymentKeys.self, forKey: .deployment)
            try entry.encode(deployment.number, forKey: .number)
            try entry.encode(deployment.phase.rawValue, forKey: .phase)
            try entry.encode(deployment.command, forKey: .command)
            try entry.encode(deployment.arguments, forKey: .args)
            try entry.encode(deployment.from, forKey: .from)
            try entry.encode(deployment.to, forKey: .to)
            try entry.encode(deployment.moving, forKey: .moving)
            try entry.encode(deployment.remaining, forKey: .remaining)
            try entry.encode(deployment.forced, forKey: .forced)
            try entry.encode(AdminAPI.timestamp(millis: deployment.startedAt), forKey: .startedAt)
            try entry.encode(deployment.finishedAt.map(AdminAPI.timestamp(millis:)), forKey: .finishedAt)
            try entry.encode(deployment.error, forKey: .error)
        }
    }

    /// `GET /v1/routes`.
    struct WorkerRoutes: Encodable {
        var routes: [WorkerRoute]
    }
}
