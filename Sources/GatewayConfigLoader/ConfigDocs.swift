/// The key tables of docs/configuration.md, written from the key declarations (`ConfigKeys`).
///
/// The document holds its prose; each table sits between `<!-- keys: PREFIX -->` and
/// `<!-- end keys -->` and lists the keys under PREFIX that no longer prefix in the same
/// document claims. A test checks the document against this rendering (and rewrites it with
/// `WSSGATE_RECORD_DOCS=1`), so the docs cannot drift from the code.
public enum ConfigDocs {
    static let opening = "<!-- keys: "
    static let closing = "<!-- end keys -->"

    /// The document with every key table rendered anew.
    public static func render(_ document: String) -> String {
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let prefixes = lines.compactMap(prefix(of:))
        var out: [String] = []
        var skipping = false
        for line in lines {
            if let prefix = prefix(of: line) {
                out.append(line)
                out.append(contentsOf: table(prefix, claimedElsewhere: prefixes.filter { $0 != prefix }))
                skipping = true
            } else if line == closing {
                out.append(line)
                skipping = false
            } else if !skipping {
                out.append(line)
            }
        }
        return out.joined(separator: "\n")
    }

    /// Every key pattern a table of the document lists.
    public static func documentedKeys(_ document: String) -> [String] {
        let lines = document.split(separator: "\n").map(String.init)
        let prefixes = lines.compactMap(prefix(of:))
        return prefixes.flatMap { prefix in
            keys(prefix, claimedElsewhere: prefixes.filter { $0 != prefix }).map(\.pattern)
        }
    }

    private static func prefix(of line: String) -> String? {
        guard line.hasPrefix(opening), line.hasSuffix(" -->") else { return nil }
        return String(line.dropFirst(opening.count).dropLast(4))
    }

    private static func keys(
        _ prefix: String,
        claimedElsewhere others: [String]
    ) -> [(pattern: String, spec: ConfigKeySpec)] {
        ConfigSchema.keys.filter { key in
            guard key.pattern.hasPrefix(prefix + ".") else { return false }
            // A longer prefix in the same document lists it instead.
            return !others.contains { $0.count > prefix.count && key.pattern.hasPrefix($0 + ".") }
        }
    }

    private static func table(_ prefix: String, claimedElsewhere others: [String]) -> [String] {
        ["| key | values | default | reload | meaning |", "| --- | --- | --- | --- | --- |"]
            + keys(prefix, claimedElsewhere: others).map { key in
                "| `\(key.pattern)` | \(values(key.spec.kind)) | \(describe(key.spec.defaultValue)) | \(key.spec.reload.rawValue) | \(key.spec.meaning) |"
            }
    }

    /// What a key accepts, ranges included, as the loader checks it.
    static func values(_ kind: ValueKind) -> String {
        switch kind {
        case .text: "text"
        case .secret: "text (secret)"
        case .word(let words): words.map { "`\($0)`" }.joined(separator: ", ")
        case .boolean: "`true`, `false`"
        case .integer(let range): "\(number(range.lowerBound)) to \(number(range.upperBound))"
        case .bytes(let range): "\(byteCount(range.lowerBound)) to \(byteCount(range.upperBound))"
        case .duration(let positive): positive ? "duration above 0" : "duration, 0 or more"
        case .durationOrNever: "duration, or `never`"
        case .rate: "per second, 0 or more (0: no limit)"
        case .list: "list"
        case .valueOrList: "value or list"
        }
    }

    /// `1,000,000`.
    private static func number(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// `1 KiB`, `16 MiB`, `100 bytes`: the largest unit that divides it.
    static func byteCount(_ value: Int) -> String {
        for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where value >= size && value % size == 0 {
            return "\(number(value / size)) \(unit)"
        }
        return "\(number(value)) bytes"
    }

    private static func describe(_ value: KeyDefault) -> String {
        switch value {
        case .value(let text, let note):
            "`\(text)`" + (note.map { " (\($0))" } ?? "")
        case .list(let items):
            "`["
                + items.map { item in
                    item.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) } ? item : "\"\(item)\""
                }.joined(separator: ", ") + "]`"
        case .unset(let words), .required(let words):
            words
        }
    }
}
