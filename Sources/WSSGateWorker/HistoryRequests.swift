import NIOConcurrencyHelpers
import WorkerProtocol

/// The worker's requests about topic history that the gateway answers (`resume` →
/// `subscribed`, `record` → `recorded`), each waiting for its answer on the link it went out on.
/// A link that ends answers what waits on it: `unavailable` and `failed`.
final class HistoryRequests: Sendable {
    private struct Waiting {
        var link: ObjectIdentifier
        var continuation: CheckedContinuation<Answer, Never>
    }

    enum Answer: Sendable {
        case subscribed(WorkerFrame.Subscribed)
        case recorded(WorkerFrame.RecordStatus, WorkerFrame.Position)
    }

    private struct State {
        var nextRequest: UInt32 = 0
        var records: [UInt32: Waiting] = [:]
        /// By connection and topic, oldest first: the gateway answers a link's resumes in order.
        var resumes: [String: [Waiting]] = [:]
    }

    private let state = NIOLockedValueBox(State())

    func nextRequest() -> UInt32 {
        state.withLockedValue { state in
            state.nextRequest &+= 1
            return state.nextRequest
        }
    }

    static func key(_ connection: UInt64, _ topic: String) -> String { "\(connection) \(topic)" }

    func waitForRecord(_ request: UInt32, on link: ObjectIdentifier, send: () -> Void) async -> Answer {
        await withCheckedContinuation { continuation in
            state.withLockedValue { $0.records[request] = Waiting(link: link, continuation: continuation) }
            send()
        }
    }

    func waitForResume(_ key: String, on link: ObjectIdentifier, send: () -> Void) async -> Answer {
        await withCheckedContinuation { continuation in
            state.withLockedValue {
                $0.resumes[key, default: []].append(Waiting(link: link, continuation: continuation))
            }
            send()
        }
    }

    func recorded(_ request: UInt32, status: WorkerFrame.RecordStatus, position: WorkerFrame.Position) {
        state.withLockedValue { $0.records.removeValue(forKey: request) }?.continuation.resume(
            returning: .recorded(status, position)
        )
    }

    func subscribed(_ answer: WorkerFrame.Subscribed) {
        let key = Self.key(answer.connection, answer.topic)
        let waiting = state.withLockedValue { state -> Waiting? in
            guard var queue = state.resumes[key], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            state.resumes[key] = queue.isEmpty ? nil : queue
            return first
        }
        waiting?.continuation.resume(returning: .subscribed(answer))
    }

    /// The link is gone: what waited on it will not be answered.
    func linkEnded(_ link: ObjectIdentifier) {
        let (records, resumes) = state.withLockedValue { state -> ([Waiting], [(String, Waiting)]) in
            let records = state.records.filter { $0.value.link == link }
            for request in records.keys { state.records[request] = nil }
            var resumes: [(String, Waiting)] = []
            for (key, queue) in state.resumes {
                let (gone, kept) = (queue.filter { $0.link == link }, queue.filter { $0.link != link })
                resumes += gone.map { (key, $0) }
                state.resumes[key] = kept.isEmpty ? nil : kept
            }
            return (Array(records.values), resumes)
        }
        let none = WorkerFrame.Position(offset: 0, epoch: "")
        for waiting in records { waiting.continuation.resume(returning: .recorded(.failed, none)) }
        for (key, waiting) in resumes {
            let parts = key.split(separator: " ", maxSplits: 1)
            let answer = WorkerFrame.Subscribed(
                connection: UInt64(parts[0]) ?? 0,
                status: .unavailable,
                position: none,
                missed: 0,
                topic: parts.count > 1 ? String(parts[1]) : ""
            )
            waiting.continuation.resume(returning: .subscribed(answer))
        }
    }
}
