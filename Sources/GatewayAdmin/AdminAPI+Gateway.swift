import GatewayCore
import GatewayWebSocket
import NIOCore
import NIOHTTP1

/// The gateway itself: metrics, overview, status, reload, the cluster and ACME certificates.
extension AdminAPI {
    /// `GET /metrics`: every metric in Prometheus' text format.
    func metricsEndpoint(_ call: AdminCall) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        try call.only([.GET])
        try call.noQuery()
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
        return call.eventLoop.makeSucceededFuture(
            AdminResponse(status: .ok, headers: headers, body: ByteBuffer(bytes: metrics()))
        )
    }

    /// `/v1/overview`, `/v1/status`, `/v1/reload`, `/v1/cluster` and `/v1/certificates[/renew]`.
    func gatewayEndpoint(_ call: AdminCall) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let segments = call.segments
        switch (segments[1], segments.count) {
        case ("overview", 2):
            try call.only([.GET])
            try call.noQuery()
            return call.eventLoop.makeSucceededFuture(Self.json(.ok, overviewPayload()))
        case ("status", 2):
            try call.only([.GET])
            try call.noQuery()
            let now = status()
            return call.eventLoop.makeSucceededFuture(
                Self.json(.ok, AdminPayloads.Status(readiness: now.readiness, degraded: now.degraded))
            )
        case ("reload", 2):
            try call.only([.POST])
            try call.noQuery()
            return reloadEndpoint(on: call.eventLoop)
        case ("cluster", 2):
            try call.only([.GET])
            try call.noQuery()
            return try clusterState(on: call.eventLoop)
        case ("certificates", 2):
            try call.only([.GET])
            try call.noQuery()
            let certificates = try acmeCertificates()
            return call.eventLoop.makeSucceededFuture(
                Self.json(.ok, AdminPayloads.Certificates(statuses: certificates.certificateStatuses))
            )
        case ("certificates", 3) where segments[2] == "renew":
            try call.only([.POST])
            return try renew(call)
        default:
            throw call.noSuchEndpoint
        }
    }

    func overviewPayload() -> AdminPayloads.Overview {
        let now = overview()
        let counts = sessions.countsByRoute()
        return AdminPayloads.Overview(
            node: cluster?.name,
            readiness: status().readiness,
            connections: sessions.count,
            listeners: now.listeners.map { .init(name: $0.name, address: $0.address, tls: $0.tls) },
            routes: now.routes.map {
                .init(name: $0.name, path: $0.path, kind: $0.kind, connections: counts[$0.name] ?? 0)
            }
        )
    }

    /// `POST /v1/reload`: the same reload as SIGHUP, answered when it is done — 200 with what
    /// changed, or 409 `reload_refused` with the reason (the running configuration stays).
    func reloadEndpoint(on eventLoop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        guard let reload else {
            return eventLoop.makeSucceededFuture(
                Self.failure(AdminError(.serviceUnavailable, code: "reload_unavailable", "this gateway cannot reload"))
            )
        }
        return eventLoop.makeFutureWithTask {
            let outcome = await reload()
            guard outcome.applied else {
                return Self.failure(
                    AdminError(.conflict, code: "reload_refused", outcome.reason ?? "the reload was refused")
                )
            }
            return Self.json(.ok, AdminPayloads.Reloaded(changes: outcome.changes))
        }
    }

    func acmeCertificates() throws(AdminError) -> any CertificateAdministration {
        guard let certificates else {
            throw AdminError.notFound("no listener gets its certificate by ACME (tls.acme)")
        }
        return certificates
    }

    func renew(_ call: AdminCall) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let certificates = try acmeCertificates()
        var listener: String?
        for (key, value) in call.query {
            guard key == "listener" else {
                throw AdminError.invalidField(key, "unknown parameter '\(key)'; renew takes listener")
            }
            listener = value
        }
        let renewing = certificates.renewNow(listener: listener)
        guard !renewing.isEmpty else {
            throw AdminError.notFound("listener '\(listener ?? "")' does not get its certificate by ACME")
        }
        return call.eventLoop.makeSucceededFuture(Self.json(.accepted, AdminPayloads.Renewing(listeners: renewing)))
    }

    func clusterState(on eventLoop: any EventLoop) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        guard let cluster else { throw AdminError.notFound("this gateway is not part of a cluster (no cluster.redis)") }
        return eventLoop.makeFutureWithTask {
            let nodes = (try? await cluster.liveNodes()) ?? []
            return Self.json(
                .ok,
                AdminPayloads.Cluster(
                    node: cluster.name,
                    number: cluster.number,
                    linked: cluster.isLinked,
                    nodes: nodes.map { .init(name: $0.name, number: $0.number) }
                )
            )
        }
    }
}
