import FuzzTargets

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's entry points. The target is chosen once, by `WSSGATE_FUZZ_TARGET` (`make fuzz`
/// sets it to each target's name in turn); a broken invariant becomes a crash, so libFuzzer
/// writes the input out as `crash-…` and stops.
nonisolated(unsafe) private var chosen: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
) -> CInt {
    let name = getenv("WSSGATE_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget.named(name) else {
        let names = FuzzTarget.all.map(\.name).joined(separator: ", ")
        let message = Array("wssgate-fuzz: set WSSGATE_FUZZ_TARGET to one of: \(names)\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(2)
    }
    chosen = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    do {
        try chosen!.run(bytes)
    } catch {
        fatalError("\(chosen!.name): \(error)")
    }
    return 0
}
