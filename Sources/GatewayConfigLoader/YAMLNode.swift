/// A YAML document as the configuration reads it: mappings, lists and scalars (as their text;
/// the schema and the builder decide what a value means), each with where it stands in the file
/// so that errors can name the line.
enum YAMLNode: Sendable {
    /// A position in the text, 1-based like an editor's.
    struct Mark: Sendable, Equatable {
        var line: Int
        var column: Int
    }

    case scalar(String, Mark)
    case sequence([YAMLNode], Mark)
    /// Keys in the order written (a configuration's order matters: listeners bind in it).
    case mapping([(key: YAMLNode, value: YAMLNode)], Mark)

    var mark: Mark {
        switch self {
        case .scalar(_, let mark), .sequence(_, let mark), .mapping(_, let mark): mark
        }
    }

    /// A scalar's text; nil for a list or a mapping.
    var string: String? {
        if case .scalar(let text, _) = self { return text }
        return nil
    }
}
