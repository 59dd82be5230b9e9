import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reaps every child of the process in one place: one thread blocks in `waitpid(-1)` and hands
/// each exit to whoever waits for that child. As PID 1 in a container the gateway also adopts
/// orphans (its workers' own children, say); they are reaped here too, so no zombie is left.
///
/// A spawn registers its child under the same lock that the reaper takes to hand out an exit,
/// so an exit that happens at once is never missed.
final class ChildReaper: Sendable {
    static let shared = ChildReaper()

    private enum Entry {
        case waiting(@Sendable (String) -> Void)
        case running
        case exited(String)
    }

    private struct State {
        var children: [pid_t: Entry] = [:]
        var started = false
    }

    private let state = NIOLockedValueBox(State())

    /// Runs `spawn` (which starts one child and returns its pid) so that its exit is kept for
    /// `waitForExit`.
    func spawn(_ spawn: () throws -> ChildProcess) rethrows -> ChildProcess {
        try state.withLockedValue { state in
            let child = try spawn()
            state.children[child.pid] = .running
            if !state.started {
                state.started = true
                startThread()
            }
            return child
        }
    }

    /// How the child ended (`exit 0`, `signal 9`).
    func waitForExit(_ pid: pid_t) async -> String {
        await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let done: String? = state.withLockedValue { state in
                if case .exited(let status)? = state.children[pid] {
                    state.children[pid] = nil
                    return status
                }
                state.children[pid] = .waiting { continuation.resume(returning: $0) }
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    private func startThread() {
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { _ in ChildReaper.shared.reapForever() }, nil)
        precondition(result == 0, "cannot start the child reaper thread")
        pthread_detach(thread)
    }

    private func reapForever() -> Never {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid > 0 {
                // WIFEXITED / WTERMSIG by hand: the macros are not imported.
                let signal = status & 0x7F
                let description = signal == 0 ? "exit \((status >> 8) & 0xFF)" : "signal \(signal)"
                let waiter: (@Sendable (String) -> Void)? = state.withLockedValue { state in
                    switch state.children[pid] {
                    case .waiting(let waiter)?:
                        state.children[pid] = nil
                        return waiter
                    case .running?:
                        state.children[pid] = .exited(description)
                        return nil
                    case .exited?, nil:
                        return nil  // an adopted orphan: reaped, nothing to tell
                    }
                }
                waiter?(description)
            } else if errno == ECHILD {
                usleep(100_000)  // no children now
            }
        }
    }
}
