/// What the analytics found on a frame (NvDsAnalyticsFrameMeta).
public struct FrameAnalytics: Sendable, Equatable {
    /// Objects in each region (`[roi-filtering-…]`), by region name.
    public var objectsInRegion: [String: Int] = [:]
    /// Each overcrowding region's status: more objects inside than its threshold.
    public var overcrowded: [String: Bool] = [:]
    /// Crossings of each line since the run began, by line name.
    public var crossingsSoFar: [String: Int] = [:]
    public init() {}
}

/// What the analytics found of one object (NvDsAnalyticsObjInfo).
public struct ObjectAnalytics: Sendable, Equatable {
    /// The regions it is in.
    public var regions: [String] = []
    /// The lines it crossed on this frame.
    public var linesCrossed: [String] = []
    /// The named direction it moves along, if any is within 45°.
    public var direction: String?
    public init() {}
}

/// nvdsanalytics' work for one stream, frame by frame: region occupancy, overcrowding, line
/// crossings and direction. Pure: the frames' objects in, the results out. Crossings and
/// directions follow tracked objects (a `trackerID`): each track's last point is kept, and
/// forgotten once the track has not been seen for `forgetAfter` frames.
public struct StreamAnalytics: Sendable {
    public let rules: StreamAnalyticsRules
    private let forgetAfter: Int
    private var lastPoint: [UInt64: (point: Point, frame: Int)] = [:]
    private var crossings: [String: Int]
    private var frame = 0

    public init(rules: StreamAnalyticsRules, forgetAfter: Int = 30) {
        self.rules = rules
        self.forgetAfter = forgetAfter
        crossings = Dictionary(uniqueKeysWithValues: rules.lines.map { ($0.name, 0) })
    }

    /// One frame's objects: each gets its `ObjectAnalytics`, the frame its `FrameAnalytics`.
    public mutating func process(_ objects: [ObjectMeta]) -> (frame: FrameAnalytics, objects: [ObjectAnalytics]) {
        frame += 1
        var result = FrameAnalytics()
        var perObject = [ObjectAnalytics](repeating: ObjectAnalytics(), count: objects.count)
        let points = objects.map { Point(bottomCentreOf: $0.rect) }
        for region in rules.regions {
            var count = 0
            for (index, object) in objects.enumerated() where region.classes.admits(object.classID) {
                guard AnalyticsGeometry.contains(region.polygon, points[index]) != region.inverse else { continue }
                count += 1
                perObject[index].regions.append(region.name)
            }
            result.objectsInRegion[region.name] = count
        }
        for rule in rules.overcrowding {
            let count = objects.indices.filter { rule.classes.admits(objects[$0].classID) && AnalyticsGeometry.contains(rule.polygon, points[$0]) }.count
            result.overcrowded[rule.name] = count > rule.threshold
        }
        for (index, object) in objects.enumerated() {
            guard let id = object.trackerID else { continue }
            if let previous = lastPoint[id]?.point {
                let (p, q) = (previous, points[index])
                for line in rules.lines where line.classes.admits(object.classID) {
                    guard AnalyticsGeometry.crosses(from: p, to: q, lineStart: line.lineStart, lineEnd: line.lineEnd, extended: line.extended),
                          AnalyticsGeometry.cosine(q.x - p.x, q.y - p.y, line.to.x - line.from.x, line.to.y - line.from.y) > 0 else { continue }
                    crossings[line.name, default: 0] += 1
                    perObject[index].linesCrossed.append(line.name)
                }
                let best = rules.directions.filter { $0.classes.admits(object.classID) }
                    .map { ($0.name, AnalyticsGeometry.cosine(q.x - p.x, q.y - p.y, $0.to.x - $0.from.x, $0.to.y - $0.from.y)) }
                    .max { $0.1 < $1.1 }
                if let best, best.1 >= 0.7071 { perObject[index].direction = best.0 }
            }
            lastPoint[id] = (points[index], frame)
        }
        lastPoint = lastPoint.filter { frame - $0.value.frame <= forgetAfter }
        result.crossingsSoFar = crossings
        return (result, perObject)
    }
}
