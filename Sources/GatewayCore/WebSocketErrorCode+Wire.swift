import NIOWebSocket

extension WebSocketErrorCode {
    /// 1013 Try Again Later (the IANA registry of RFC 6455 §11.7), which NIOWebSocket has no
    /// case for: what a full send queue or a worker pool with no live instance answers.
    public static let tryAgainLater = WebSocketErrorCode(codeNumber: 1013)

    /// The code as a Close frame carries it.
    public var code: UInt16 { UInt16(webSocketErrorCode: self) }

    /// The code a Close frame (or a worker's `close`) carries. Always use this rather than
    /// `.unknown(_:)`: it maps a known number to its named case, so codes compare equal.
    public init(code: UInt16) { self.init(codeNumber: Int(code)) }

    /// Whether a peer may send this code in a Close frame. 1005, 1006 and 1015 exist only as
    /// local reports and must never appear on the wire; 1004 and 1016–2999 are unassigned.
    public static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }
}
