/// The characters a name a client or an app chooses — a topic, a user id, a tag — may not hold:
/// controls, and the characters that print as nothing or reorder what follows them. A topic that
/// looks like another (`news` and `news` + a zero-width space) would let one client read or
/// publish where people see another's name, in logs, the console and the admin API alike.
public enum NameCharacters {
    /// Whether `scalar` is a control (C0, DEL, C1), a bidi control (embeddings, overrides,
    /// isolates, marks), or invisible (zero-width spaces and joiners, word joiner and invisible
    /// operators, soft hyphen, byte order mark, Mongolian vowel separator, line and paragraph
    /// separators).
    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0xAD, 0x061C, 0x180E: true
        case 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2064, 0x2066...0x206F: true
        case 0xFEFF: true
        default: false
        }
    }

    /// Whether `name` holds none of them.
    public static func areAllowed(in name: String) -> Bool {
        !name.unicodeScalars.contains(where: isForbidden)
    }
}
