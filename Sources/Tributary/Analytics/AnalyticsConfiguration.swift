/// nvdsanalytics' config file: `[property]` (`enable`, `config-width`, `config-height`, `osd-mode`:
/// what the OSD shows, `AnalyticsOverlay`) and, per
/// stream N, `[roi-filtering-stream-N]` (`roi-<name>=x;y;…`, `inverse-roi`, `class-id`),
/// `[overcrowding-stream-N]` (`roi-<name>`, `object-threshold`, `class-id`),
/// `[line-crossing-stream-N]` (`line-crossing-<name>=x1;y1;x2;y2;x3;y3;x4;y4`: the direction
/// from (x1, y1) to (x2, y2), the line from (x3, y3) to (x4, y4); `extended`, `class-id`) and
/// `[direction-detection-stream-N]` (`direction-<name>=x1;y1;x2;y2`, `class-id`). Coordinates are
/// in config-width × config-height pixels and scaled to the muxer's. A group with `enable=0` is
/// skipped; unknown groups and keys warn; bad values name file:line:key.
public enum AnalyticsConfiguration {
    /// The rules by stream (source id), in muxer pixels, and the warnings ("file:line: …").
    public static func load(path: String, muxerWidth: Int, muxerHeight: Int) throws -> (rules: [Int: StreamAnalyticsRules], warnings: [String]) {
        switch readTextFile(path) {
        case .success(let text): return try parse(text, path: path, muxerWidth: muxerWidth, muxerHeight: muxerHeight)
        case .failure(let error): throw InferConfigurationError(path: path, message: "cannot read the analytics config: \(error)")
        }
    }

    public static func parse(_ text: String, path: String, muxerWidth: Int, muxerHeight: Int) throws -> (rules: [Int: StreamAnalyticsRules], warnings: [String]) {
        var warnings: [String] = []
        let groups = try KeyFile.groups(of: text, path: path) { warnings.append("\(path):\($0): \($1)") }
        func fail(_ e: ConfigEntry, _ message: String) -> InferConfigurationError {
            InferConfigurationError(path: path, line: e.line, key: e.key, message: message)
        }
        guard let (scale, overlay) = try readProperty(groups.first(where: { $0.name == "property" }), muxerWidth: muxerWidth,
                                                      muxerHeight: muxerHeight, path: path, fail: fail, warnings: &warnings) else {
            return ([:], warnings)
        }
        func points(_ e: ConfigEntry, count: Int? = nil) throws -> [Point] {
            let numbers = e.value.split(separator: ";").map { Float(trimmed($0)) }
            guard !numbers.contains(where: { $0 == nil }), numbers.count % 2 == 0, numbers.count >= 2 else {
                throw fail(e, "'\(e.value)' is not x;y;x;y… pairs")
            }
            let list = stride(from: 0, to: numbers.count, by: 2).map { Point(x: numbers[$0]! * scale.x, y: numbers[$0 + 1]! * scale.y) }
            // NaN, infinity or a coordinate millions of pixels out is a typo, and would trap the
            // OSD's conversions to Int when drawn.
            guard list.allSatisfy({ abs($0.x) <= maximumCoordinate && abs($0.y) <= maximumCoordinate }) else {
                throw fail(e, "'\(e.value)' has a coordinate beyond ±\(Int(maximumCoordinate)) pixels (scaled to the muxer) or not a number")
            }
            if let count, list.count != count { throw fail(e, "\(list.count) points; \(count) expected") }
            return list
        }
        var rules: [Int: StreamAnalyticsRules] = [:]
        for group in groups where group.name != "property" {
            guard let (kind, stream) = streamGroup(group.name) else {
                warnings.append("\(path):\(group.line): unknown group [\(group.name)] (ignored)")
                continue
            }
            if group.entries.first(where: { $0.key == "enable" })?.value == "0" { continue }
            var classes = ClassFilter.all, inverse = false, extended = false, threshold = 0
            for e in group.entries {
                switch e.key {
                case "class-id": classes = try classFilter(e, fail)
                case "inverse-roi": inverse = e.value == "1"
                case "extended": extended = e.value == "1"
                case "object-threshold":
                    // A whole number, as nvdsanalytics reads it (g_key_file_get_integer).
                    guard let value = Int(e.value), value > 0 else { throw fail(e, "'\(e.value)' is not a positive whole number") }
                    threshold = value
                default: break
                }
            }
            var streamRules = rules[stream] ?? StreamAnalyticsRules()
            for e in group.entries {
                switch (kind, e.key) {
                case ("roi-filtering", let key) where key.hasPrefix("roi-"):
                    streamRules.regions.append(.init(name: String(key.dropFirst(4)), polygon: try points(e), inverse: inverse, classes: classes))
                case ("overcrowding", let key) where key.hasPrefix("roi-"):
                    streamRules.overcrowding.append(.init(name: String(key.dropFirst(4)), polygon: try points(e), threshold: threshold, classes: classes))
                case ("line-crossing", let key) where key.hasPrefix("line-crossing-"):
                    let p = try points(e, count: 4)
                    streamRules.lines.append(.init(name: String(key.dropFirst("line-crossing-".count)), from: p[0], to: p[1],
                                                   lineStart: p[2], lineEnd: p[3], extended: extended, classes: classes))
                case ("direction-detection", let key) where key.hasPrefix("direction-"):
                    let p = try points(e, count: 2)
                    streamRules.directions.append(.init(name: String(key.dropFirst("direction-".count)), from: p[0], to: p[1], classes: classes))
                case (_, "enable"), (_, "class-id"), (_, "inverse-roi"), (_, "extended"), (_, "object-threshold"), (_, "mode"):
                    break
                default:
                    warnings.append("\(path):\(e.line): unknown key '\(e.key)' in [\(group.name)]")
                }
            }
            rules[stream] = streamRules
        }
        for stream in rules.keys { rules[stream]!.overlay = overlay }
        return (rules.filter { !$0.value.isEmpty }, warnings)
    }

    /// `[property]`: the scale from config pixels to the muxer's and what the OSD shows; nil
    /// with `enable=0` (no analytics at all).
    private static func readProperty(_ property: ConfigGroup?, muxerWidth: Int, muxerHeight: Int, path: String,
                                     fail: (ConfigEntry, String) -> InferConfigurationError,
                                     warnings: inout [String]) throws -> (scale: (x: Float, y: Float), overlay: AnalyticsOverlay)? {
        guard let property else { return ((1, 1), .shapesAndCounts) }
        if property.entries.first(where: { $0.key == "enable" })?.value == "0" { return nil }
        var size = (width: Float(muxerWidth), height: Float(muxerHeight))
        var overlay = AnalyticsOverlay.shapesAndCounts
        for e in property.entries {
            switch e.key {
            case "config-width": size.width = try positive(e, fail)
            case "config-height": size.height = try positive(e, fail)
            case "osd-mode":
                guard let mode = Int(e.value).flatMap(AnalyticsOverlay.init(rawValue:)) else { throw fail(e, "'\(e.value)' is not 0, 1 or 2") }
                overlay = mode
            case "enable", "display-font-size": break
            default: warnings.append("\(path):\(e.line): unknown key '\(e.key)' in [property]")
            }
        }
        return ((Float(muxerWidth) / size.width, Float(muxerHeight) / size.height), overlay)
    }

    /// Muxer pixels either side of the frame a point may lie.
    static let maximumCoordinate: Float = 1_000_000

    /// `roi-filtering-stream-3` → ("roi-filtering", 3).
    private static func streamGroup(_ name: String) -> (String, Int)? {
        for kind in ["roi-filtering", "overcrowding", "line-crossing", "direction-detection"] where name.hasPrefix(kind + "-stream-") {
            if let stream = Int(name.dropFirst(kind.count + "-stream-".count)), stream >= 0 { return (kind, stream) }
        }
        return nil
    }

    private static func positive(_ e: ConfigEntry, _ fail: (ConfigEntry, String) -> InferConfigurationError) throws -> Float {
        guard let value = Float(e.value), value.isFinite, value > 0 else { throw fail(e, "'\(e.value)' is not a positive number") }
        return value
    }

    /// `-1`: every class; `0;2`: those.
    private static func classFilter(_ e: ConfigEntry, _ fail: (ConfigEntry, String) -> InferConfigurationError) throws -> ClassFilter {
        let ids = e.value.split(separator: ";").map { Int(trimmed($0)) }
        guard !ids.isEmpty, !ids.contains(where: { $0 == nil }) else { throw fail(e, "'\(e.value)' is not -1 or class ids a;b;…") }
        return ids.contains(-1) ? .all : .only(Set(ids.compactMap { $0 }))
    }
}
