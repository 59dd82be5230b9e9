/// What a reload did: the new configuration is in force with these changes, or it was refused
/// for this reason and the running configuration stays. The admin API's `POST /v1/reload`
/// answers with it, and `wssgate reload` (the shipped unit's `ExecReload=`) exits by it.
public struct ReloadOutcome: Sendable, Equatable {
    public var applied: Bool
    /// Applied: what changed (`routes.chat added`, …), empty when nothing did.
    public var changes: [String]
    /// Refused: why, as the log line says it.
    public var reason: String?

    public static func applied(_ changes: [String]) -> ReloadOutcome {
        ReloadOutcome(applied: true, changes: changes, reason: nil)
    }

    public static func refused(_ reason: String) -> ReloadOutcome {
        ReloadOutcome(applied: false, changes: [], reason: reason)
    }
}
