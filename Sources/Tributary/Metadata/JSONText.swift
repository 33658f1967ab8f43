/// JSON written straight into a string, for the metadata messages: no Foundation, no reflection,
/// one pass (a frame's message is built once per frame, thousands a second on a GPU).
struct JSONText {
    private(set) var text = ""
    private var needsComma: [Bool] = [false]

    init(capacity: Int = 512) { text.reserveCapacity(capacity) }

    private mutating func separate() {
        if needsComma[needsComma.count - 1] { text.append(",") }
        needsComma[needsComma.count - 1] = true
    }

    mutating func beginObject(_ key: String? = nil) {
        if let key { self.key(key) } else { separate() }
        text.append("{")
        needsComma.append(false)
    }

    mutating func beginArray(_ key: String) {
        self.key(key)
        text.append("[")
        needsComma.append(false)
    }

    mutating func endObject() { needsComma.removeLast(); text.append("}") }
    mutating func endArray() { needsComma.removeLast(); text.append("]") }

    private mutating func key(_ key: String) {
        separate()
        Self.appendQuoted(key, to: &text)
        text.append(":")
    }

    mutating func field(_ key: String, _ value: String) { self.key(key); Self.appendQuoted(value, to: &text) }
    mutating func field(_ key: String, _ value: Int) { self.key(key); text.append(String(value)) }
    mutating func field(_ key: String, _ value: UInt64) { self.key(key); text.append(String(value)) }
    mutating func field(_ key: String, _ value: Bool) { self.key(key); text.append(value ? "true" : "false") }
    /// A number with at most `decimals` decimals (boxes, confidences); NaN and ∞ as null.
    mutating func field(_ key: String, _ value: Double, decimals: Int) {
        self.key(key)
        text.append(Self.number(value, decimals: decimals))
    }
    mutating func null(_ key: String) { self.key(key); text.append("null") }

    /// An array element that is a string.
    mutating func element(_ value: String) { separate(); Self.appendQuoted(value, to: &text) }

    static func number(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "null" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        if rounded == rounded.rounded(.towardZero), abs(rounded) < 1e15 { return String(Int64(rounded)) }
        return String(rounded)
    }

    static func appendQuoted(_ value: String, to text: inout String) {
        text.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text.append("\\\"")
            case "\\": text.append("\\\\")
            case "\n": text.append("\\n")
            case "\r": text.append("\\r")
            case "\t": text.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text.append("\"")
    }
}
