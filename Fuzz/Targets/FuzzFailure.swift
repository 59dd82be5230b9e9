/// An invariant a target checks did not hold for an input: the fuzz driver turns it into a
/// crash (so libFuzzer keeps the input), the test suite into a failure that names the input.
public struct FuzzFailure: Error, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "invariant broken: \(message)" }

    /// Throws when `condition` is false; the message is built only then.
    @inline(__always)
    public static func check(
        _ condition: @autoclosure () -> Bool,
        _ message: @autoclosure () -> String
    ) throws(FuzzFailure) {
        if !condition() { throw FuzzFailure(message()) }
    }
}
