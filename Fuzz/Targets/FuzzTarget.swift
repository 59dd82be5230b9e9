/// One parser under fuzzing: the bytes of an input go through the gateway's real code path, and
/// what must hold for every input is checked (a broken invariant throws; a crash is a crash).
///
/// The same list serves libFuzzer (`make fuzz`, the `wssgate-fuzz` driver picks a target by
/// `WSSGATE_FUZZ_TARGET`) and the test suite (`FuzzTargetsTests` replays each corpus and a few
/// thousand mutations of it in the ordinary debug build).
public struct FuzzTarget: Sendable {
    /// The target's name: its corpus folder (`Fuzz/Corpus/<name>`) and its `make fuzz` label.
    public let name: String
    /// What the target does with one input.
    public let run: @Sendable (UnsafeRawBufferPointer) throws(FuzzFailure) -> Void

    public init(name: String, run: @escaping @Sendable (UnsafeRawBufferPointer) throws(FuzzFailure) -> Void) {
        self.name = name
        self.run = run
    }

    /// Every target, one per parser that reads bytes a peer controls.
    public static let all: [FuzzTarget] = [
        ClientHelloTarget.target,
        HTTPEdgeTarget.target,
        WebSocketFramesTarget.target,
        WebSocketSessionTarget.target,
        WorkerFramesTarget.target,
        RESPTarget.target,
        ConfigurationTarget.target,
        ACMETarget.target,
        JWTTarget.target,
        PercentDecodingTarget.target,
        ProxyProtocolTarget.target,
        HTTPCommandsTarget.target,
    ]

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}
