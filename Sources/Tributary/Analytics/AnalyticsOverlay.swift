/// What the OSD shows of a stream's analytics (nvdsanalytics' `osd-mode`): its regions, lines and
/// directions as display lines, and with `.shapesAndCounts` each rule's count as a text in the
/// tile's top-left corner — added to the frame's `DisplayMeta`, drawn by either OSD.
public enum AnalyticsOverlay: Int, Sendable {
    /// `osd-mode=0`: nothing drawn.
    case none = 0
    /// `osd-mode=1`: regions, lines and directions.
    case shapes = 1
    /// `osd-mode=2` (the default): those and the counts.
    case shapesAndCounts = 2

    static let regionColour = RGBA(r: 0, g: 220, b: 220)
    static let crowdColour = RGBA(r: 255, g: 128, b: 0)
    static let overcrowdedColour = RGBA(r: 255, g: 0, b: 0)
    static let lineColour = RGBA(r: 255, g: 200, b: 0)
    static let directionColour = RGBA(r: 255, g: 0, b: 255)
    static let textColour = RGBA(r: 32, g: 32, b: 32)
    static let textOrigin = Point(x: 8, y: 8)

    /// The display lines and texts of `rules` with a frame's results, in muxer pixels.
    public func display(of rules: StreamAnalyticsRules, results: FrameAnalytics) -> DisplayMeta {
        var display = DisplayMeta()
        guard self != .none else { return display }
        for region in rules.regions { Self.outline(region.polygon, Self.regionColour, into: &display) }
        for crowd in rules.overcrowding {
            Self.outline(crowd.polygon, results.overcrowded[crowd.name] == true ? Self.overcrowdedColour : Self.crowdColour, into: &display)
        }
        for line in rules.lines {
            display.lines.append(.init(from: line.lineStart, to: line.lineEnd, width: 3, colour: Self.lineColour))
            Self.arrow(from: line.from, to: line.to, Self.lineColour, into: &display)
        }
        for direction in rules.directions { Self.arrow(from: direction.from, to: direction.to, Self.directionColour, into: &display) }
        guard self == .shapesAndCounts else { return display }
        func text(_ string: String) { display.texts.append(.init(string, at: Self.textOrigin, colour: Self.textColour)) }
        for region in rules.regions { text("ROI \(region.name): \(results.objectsInRegion[region.name] ?? 0)") }
        for crowd in rules.overcrowding { text("Crowd \(crowd.name): \(results.overcrowded[crowd.name] == true ? "over \(crowd.threshold)" : "ok")") }
        for line in rules.lines { text("Line \(line.name): \(results.crossingsSoFar[line.name] ?? 0)") }
        return display
    }

    private static func outline(_ polygon: [Point], _ colour: RGBA, into display: inout DisplayMeta) {
        guard polygon.count >= 2 else { return }
        for (index, point) in polygon.enumerated() {
            display.lines.append(.init(from: point, to: polygon[(index + 1) % polygon.count], width: 2, colour: colour))
        }
    }

    /// A thin arrow from `from` to `to`: the shaft and two strokes of the head at ±30°.
    private static func arrow(from: Point, to: Point, _ colour: RGBA, into display: inout DisplayMeta) {
        display.lines.append(.init(from: from, to: to, width: 2, colour: colour))
        let (dx, dy) = (from.x - to.x, from.y - to.y)
        let length = (dx * dx + dy * dy).squareRoot()
        guard length > 0 else { return }
        let head = min(16, length / 3) / length
        let (c, s): (Float, Float) = (0.8660254, 0.5)  // cos 30°, sin 30°
        for sign: Float in [1, -1] {
            let x = (dx * c - sign * dy * s) * head, y = (sign * dx * s + dy * c) * head
            display.lines.append(.init(from: to, to: Point(x: to.x + x, y: to.y + y), width: 2, colour: colour))
        }
    }
}
