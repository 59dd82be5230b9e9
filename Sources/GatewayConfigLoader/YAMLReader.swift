import CYAML

/// Reads YAML with libyaml's event parser and builds a `YAMLNode` tree. libyaml does the
/// YAML itself (quoting, escapes, block and flow styles, comments); this layer only stacks
/// its events into a tree, resolves anchors, and refuses what a configuration must not hold: a
/// key written twice in one mapping, a second document, aliases to unknown anchors.
///
/// A hand-written parser is out of the question (YAML is large and subtle); Yams is too, because
/// it brings full Foundation and its 37 MB of ICU into the static binary.
enum YAMLReader {
    struct Failure: Error, Sendable, Equatable {
        enum Code: Sendable, Equatable {
            case syntax
            /// A key appears twice in one mapping; `key` names it.
            case duplicateKey(String)
        }
        var code: Code
        var problem: String
        var mark: YAMLNode.Mark
    }

    /// Containers being built, innermost last.
    private enum Frame {
        case sequence([YAMLNode], YAMLNode.Mark, anchor: String?)
        case mapping([(key: YAMLNode, value: YAMLNode)], pendingKey: YAMLNode?, YAMLNode.Mark, anchor: String?)
    }

    /// The document's root, or nil for an empty stream (an empty file).
    static func read(_ text: String) throws(Failure) -> YAMLNode? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw Failure(code: .syntax, problem: "the YAML parser could not start", mark: .init(line: 1, column: 1))
        }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        // libyaml keeps the pointer: the bytes must outlive parsing, which they do in here.
        return try bytes.withUnsafeMutableBufferPointer { buffer throws(Failure) -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            do throws(Failure) {
                return try parse(&parser)
            } catch {
                throw explained(error, parser: parser, bytes: UnsafeBufferPointer(buffer))
            }
        }
    }

    /// libyaml's two most puzzling messages in plain words: a tab where YAML wants spaces, and
    /// a quote that never closes (libyaml says so at the end of the file; the quote is where
    /// it opened).
    private static func explained(
        _ failure: Failure,
        parser: yaml_parser_t,
        bytes: UnsafeBufferPointer<UInt8>
    )
        -> Failure
    {
        guard failure.code == .syntax else { return failure }
        let index = Int(parser.problem_mark.index)
        if index < bytes.count, bytes[index] == UInt8(ascii: "\t") {
            var explained = failure
            explained.problem = "a tab character: YAML indents with spaces only"
            return explained
        }
        let context = parser.context.map { String(cString: $0) } ?? ""
        if context.contains("quoted scalar") {
            var explained = failure
            explained.problem = "a quoted value is never closed: its quote opens here"
            explained.mark = .init(line: Int(parser.context_mark.line) + 1, column: Int(parser.context_mark.column) + 1)
            return explained
        }
        return failure
    }

    private static func parse(_ parser: inout yaml_parser_t) throws(Failure) -> YAMLNode? {
        var stack: [Frame] = []
        var anchors: [String: YAMLNode] = [:]
        var root: YAMLNode?
        var documents = 0

        /// A finished node goes into its container, or becomes the root.
        func place(_ node: YAMLNode, anchor: String?) throws(Failure) {
            if let anchor { anchors[anchor] = node }
            guard let top = stack.popLast() else {
                root = node
                return
            }
            switch top {
            case .sequence(var items, let mark, let anchor):
                items.append(node)
                stack.append(.sequence(items, mark, anchor: anchor))
            case .mapping(var pairs, let pendingKey, let mark, let anchor):
                if let key = pendingKey {
                    pairs.append((key, node))
                    stack.append(.mapping(pairs, pendingKey: nil, mark, anchor: anchor))
                } else {
                    if let name = node.string, pairs.contains(where: { $0.key.string == name }) {
                        throw Failure(
                            code: .duplicateKey(name),
                            problem: "key '\(name)' appears twice in one mapping",
                            mark: node.mark
                        )
                    }
                    stack.append(.mapping(pairs, pendingKey: node, mark, anchor: anchor))
                }
            }
        }

        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "not valid YAML"
                let context = parser.context.map { " " + String(cString: $0) } ?? ""
                let mark = parser.problem_mark
                throw Failure(
                    code: .syntax,
                    problem: problem + context,
                    mark: .init(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
                )
            }
            defer { yaml_event_delete(&event) }
            let mark = YAMLNode.Mark(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return root
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    throw Failure(
                        code: .syntax,
                        problem: "a configuration is one YAML document; a second one starts here",
                        mark: mark
                    )
                }
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text = String(
                    decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length),
                    as: UTF8.self
                )
                try place(.scalar(text, mark), anchor: scalar.anchor.map { String(cString: $0) })
            case YAML_SEQUENCE_START_EVENT:
                stack.append(.sequence([], mark, anchor: event.data.sequence_start.anchor.map { String(cString: $0) }))
            case YAML_MAPPING_START_EVENT:
                stack.append(
                    .mapping(
                        [],
                        pendingKey: nil,
                        mark,
                        anchor: event.data.mapping_start.anchor.map { String(cString: $0) }
                    )
                )
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let top = stack.popLast() else { break }
                switch top {
                case .sequence(let items, let mark, let anchor):
                    try place(.sequence(items, mark), anchor: anchor)
                case .mapping(let pairs, _, let mark, let anchor):
                    try place(.mapping(pairs, mark), anchor: anchor)
                }
            case YAML_ALIAS_EVENT:
                let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
                guard let node = anchors[name] else {
                    throw Failure(code: .syntax, problem: "alias *\(name) names no anchor before it", mark: mark)
                }
                try place(node, anchor: nil)
            default:
                break  // stream start, document end, no-op events
            }
        }
    }
}
