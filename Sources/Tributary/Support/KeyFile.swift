/// Text in GKeyFile's format, as nvinfer's and nvdsanalytics' configs are written: `[group]`
/// headers, `key=value` lines, whole-line `#` comments; errors name the file and line.
enum KeyFile {
    /// Splits the text into groups of entries, following GKeyFile: whole-line `#` comments
    /// only (a `#` inside a value is part of it), later duplicate keys win.
    static func groups(of text: String, path: String, warn: (Int, String) -> Void) throws -> [ConfigGroup] {
        var groups: [ConfigGroup] = []
        var groupIndex: [String: Int] = [:]
        var current: Int?
        // "\r\n" is a single Character in Swift, so it must be named as a separator too.
        let rawLines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (offset, rawLine) in rawLines.enumerated() {
            let number = offset + 1
            let line = trimmed(rawLine)
            if line.isEmpty || line.first == "#" { continue }
            if line.first == "[" {
                guard line.last == "]", line.count > 2 else {
                    throw InferConfigurationError(path: path, line: number, message: "malformed group header '\(line)'")
                }
                let name = String(trimmed(line.dropFirst().dropLast()))
                if let index = groupIndex[name] {
                    current = index
                } else {
                    groupIndex[name] = groups.count
                    current = groups.count
                    groups.append(ConfigGroup(name: name, line: number))
                }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw InferConfigurationError(path: path, line: number, message: "'\(line)' is not a group, a key=value pair or a comment")
            }
            let key = String(trimmed(line[..<equals]))
            let value = String(trimmed(line[line.index(after: equals)...]))
            guard !key.isEmpty else {
                throw InferConfigurationError(path: path, line: number, message: "'\(line)' has no key")
            }
            guard let current else {
                throw InferConfigurationError(path: path, line: number, message: "key '\(key)' comes before any [group]")
            }
            let groupName = groups[current].name
            if let existing = groups[current].entries.firstIndex(where: { $0.key == key }) {
                let first = groups[current].entries[existing].line
                warn(number, "duplicate key '\(key)' in [\(groupName)] (also at line \(first)); the later value wins")
                groups[current].entries[existing] = ConfigEntry(key: key, value: value, line: number)
            } else {
                groups[current].entries.append(ConfigEntry(key: key, value: value, line: number))
            }
        }
        return groups
    }
}

/// One `key=value` line.
struct ConfigEntry {
    var key: String
    var value: String
    var line: Int
}

/// One group; a group named twice is merged, as GKeyFile does.
struct ConfigGroup {
    var name: String
    var line: Int
    var entries: [ConfigEntry] = []
}

