extension Point {
    /// An object's point, as nvdsanalytics takes it: the bottom centre of its box.
    public init(bottomCentreOf rect: Rect) { self.init(x: rect.left + rect.width / 2, y: rect.top + rect.height) }
}

/// Which classes a rule counts: every class, or these ids (nvdsanalytics' `class-id`, −1: all).
public enum ClassFilter: Sendable, Equatable {
    case all
    case only(Set<Int>)

    public func admits(_ classID: Int) -> Bool {
        switch self {
        case .all: return true
        case .only(let ids): return ids.contains(classID)
        }
    }
}

/// nvdsanalytics' rules for one stream, in muxer pixels.
public struct StreamAnalyticsRules: Sendable, Equatable {
    /// `[roi-filtering-stream-N]`: objects inside each region (outside, with `inverse-roi`).
    public struct Region: Sendable, Equatable {
        public var name: String
        public var polygon: [Point]
        public var inverse: Bool
        public var classes: ClassFilter
        public init(name: String, polygon: [Point], inverse: Bool = false, classes: ClassFilter = .all) {
            self.name = name; self.polygon = polygon; self.inverse = inverse; self.classes = classes
        }
    }

    /// `[overcrowding-stream-N]`: more than `threshold` objects inside the region.
    public struct Overcrowding: Sendable, Equatable {
        public var name: String
        public var polygon: [Point]
        public var threshold: Int
        public var classes: ClassFilter
        public init(name: String, polygon: [Point], threshold: Int, classes: ClassFilter = .all) {
            self.name = name; self.polygon = polygon; self.threshold = threshold; self.classes = classes
        }
    }

    /// `[line-crossing-stream-N]`: a tracked object's point crossing the segment from `lineStart`
    /// to `lineEnd` while moving along `from → to` (the crossing's direction, "entry" of that
    /// name); `extended`: the whole line, not only the segment.
    public struct LineCrossing: Sendable, Equatable {
        public var name: String
        public var from: Point
        public var to: Point
        public var lineStart: Point
        public var lineEnd: Point
        public var extended: Bool
        public var classes: ClassFilter
        public init(name: String, from: Point, to: Point, lineStart: Point, lineEnd: Point, extended: Bool = false, classes: ClassFilter = .all) {
            self.name = name; self.from = from; self.to = to; self.lineStart = lineStart; self.lineEnd = lineEnd
            self.extended = extended; self.classes = classes
        }
    }

    /// `[direction-detection-stream-N]`: a tracked object moving along `from → to` (within 45°).
    public struct Direction: Sendable, Equatable {
        public var name: String
        public var from: Point
        public var to: Point
        public var classes: ClassFilter
        public init(name: String, from: Point, to: Point, classes: ClassFilter = .all) {
            self.name = name; self.from = from; self.to = to; self.classes = classes
        }
    }

    public var regions: [Region] = []
    public var overcrowding: [Overcrowding] = []
    public var lines: [LineCrossing] = []
    public var directions: [Direction] = []
    /// What the OSD shows of them (`[property] osd-mode`).
    public var overlay = AnalyticsOverlay.shapesAndCounts

    public init(regions: [Region] = [], overcrowding: [Overcrowding] = [], lines: [LineCrossing] = [], directions: [Direction] = [],
                overlay: AnalyticsOverlay = .shapesAndCounts) {
        self.regions = regions; self.overcrowding = overcrowding; self.lines = lines; self.directions = directions
        self.overlay = overlay
    }

    public var isEmpty: Bool { regions.isEmpty && overcrowding.isEmpty && lines.isEmpty && directions.isEmpty }
}

/// Plane geometry of the rules.
enum AnalyticsGeometry {
    /// Whether `p` lies inside `polygon` (even–odd rule; a point on an edge may fall either way).
    static func contains(_ polygon: [Point], _ p: Point) -> Bool {
        guard polygon.count >= 3 else { return false }
        var inside = false
        var j = polygon.count - 1
        for i in polygon.indices {
            let a = polygon[i], b = polygon[j]
            if (a.y > p.y) != (b.y > p.y), p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x { inside.toggle() }
            j = i
        }
        return inside
    }

    /// The sign of `p` relative to the line through `a` and `b` (cross product's z).
    static func side(_ a: Point, _ b: Point, _ p: Point) -> Float {
        (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)
    }

    /// Whether moving from `p` to `q` crosses the line `a`–`b`: `p` and `q` on opposite sides,
    /// and (unless `extended`) `a` and `b` on opposite sides of `p`–`q`, so the segment is hit.
    static func crosses(from p: Point, to q: Point, lineStart a: Point, lineEnd b: Point, extended: Bool) -> Bool {
        let sp = side(a, b, p), sq = side(a, b, q)
        guard (sp < 0 && sq >= 0) || (sp >= 0 && sq < 0) else { return false }
        if extended { return true }
        let sa = side(p, q, a), sb = side(p, q, b)
        return (sa < 0) != (sb < 0) || sa == 0 || sb == 0
    }

    /// Cosine of the angle between two movements; 0 when either is still.
    static func cosine(_ dx1: Float, _ dy1: Float, _ dx2: Float, _ dy2: Float) -> Float {
        let norms = (dx1 * dx1 + dy1 * dy1).squareRoot() * (dx2 * dx2 + dy2 * dy2).squareRoot()
        return norms > 0 ? (dx1 * dx2 + dy1 * dy2) / norms : 0
    }
}
