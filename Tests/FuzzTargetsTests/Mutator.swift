import SessionTestSupport

/// libFuzzer's simplest mutations, without coverage: enough for the suite to reach past the
/// seeds each run, the same way every run.
enum Mutator {
    static func mutate(_ seeds: [[UInt8]], using generator: inout SplitMix64) -> [UInt8] {
        var bytes = seeds[Int(generator.next() % UInt64(seeds.count))]
        let steps = 1 + Int(generator.next() % 4)
        for _ in 0..<steps {
            let position = bytes.isEmpty ? 0 : Int(generator.next() % UInt64(bytes.count))
            switch generator.next() % 8 {
            case 0 where !bytes.isEmpty:
                bytes[position] ^= 1 << (generator.next() % 8)  // flip a bit
            case 1 where !bytes.isEmpty:
                bytes[position] = UInt8(truncatingIfNeeded: generator.next())  // a random byte
            case 2 where !bytes.isEmpty:
                bytes.remove(at: position)  // drop a byte
            case 3:
                bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
            case 4 where !bytes.isEmpty:
                bytes[position] = [0, 0xFF, 0x7F, 0x80, 0x7E, 0x0D, 0x0A, 0x25][Int(generator.next() % 8)]
            case 5 where !bytes.isEmpty:
                // Repeat a stretch.
                let length = min(bytes.count - position, 1 + Int(generator.next() % 64))
                bytes.insert(contentsOf: bytes[position..<(position + length)], at: position)
            case 6:
                // Splice in part of another seed.
                let other = seeds[Int(generator.next() % UInt64(seeds.count))]
                guard !other.isEmpty else { continue }
                let start = Int(generator.next() % UInt64(other.count))
                let length = min(other.count - start, 1 + Int(generator.next() % 128))
                bytes.insert(contentsOf: other[start..<(start + length)], at: position)
            default:
                // Cut the tail.
                if !bytes.isEmpty { bytes.removeLast(Int(generator.next() % UInt64(bytes.count))) }
            }
        }
        return bytes
    }
}
