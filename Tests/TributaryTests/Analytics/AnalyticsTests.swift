import Testing
@testable import Tributary

@Suite struct AnalyticsGeometryTests {
    let square = [Point(x: 0, y: 0), Point(x: 10, y: 0), Point(x: 10, y: 10), Point(x: 0, y: 10)]

    @Test func pointsInsideAndOutsideAPolygon() {
        #expect(AnalyticsGeometry.contains(square, Point(x: 5, y: 5)))
        #expect(!AnalyticsGeometry.contains(square, Point(x: 15, y: 5)))
        #expect(!AnalyticsGeometry.contains(square, Point(x: 5, y: -1)))
        // A concave polygon: the notch is outside.
        let u = [Point(x: 0, y: 0), Point(x: 30, y: 0), Point(x: 30, y: 30), Point(x: 20, y: 30), Point(x: 20, y: 10),
                 Point(x: 10, y: 10), Point(x: 10, y: 30), Point(x: 0, y: 30)]
        #expect(!AnalyticsGeometry.contains(u, Point(x: 15, y: 20)))
        #expect(AnalyticsGeometry.contains(u, Point(x: 5, y: 20)))
    }

    @Test func crossingTheSegmentOrTheWholeLine() {
        let a = Point(x: 0, y: 10), b = Point(x: 100, y: 10)
        #expect(AnalyticsGeometry.crosses(from: Point(x: 50, y: 5), to: Point(x: 50, y: 15), lineStart: a, lineEnd: b, extended: false))
        #expect(!AnalyticsGeometry.crosses(from: Point(x: 50, y: 5), to: Point(x: 50, y: 9), lineStart: a, lineEnd: b, extended: false))
        // Beside the segment: only the extended line is crossed.
        #expect(!AnalyticsGeometry.crosses(from: Point(x: 150, y: 5), to: Point(x: 150, y: 15), lineStart: a, lineEnd: b, extended: false))
        #expect(AnalyticsGeometry.crosses(from: Point(x: 150, y: 5), to: Point(x: 150, y: 15), lineStart: a, lineEnd: b, extended: true))
    }
}

@Suite struct StreamAnalyticsTests {
    /// A person whose box's bottom centre is at (x, y).
    func person(id: UInt64?, x: Float, y: Float, classID: Int = 0) -> ObjectMeta {
        ObjectMeta(classID: classID, label: classID == 0 ? "person" : "car", confidence: 0.9,
                   rect: Rect(left: x - 10, top: y - 40, width: 20, height: 40), detectorID: 1, trackerID: id)
    }

    /// A door line at y = 100 from x 0 to 200: "Entry" counts crossings downwards, "Exit" upwards.
    let door = StreamAnalyticsRules(lines: [
        .init(name: "Entry", from: Point(x: 100, y: 50), to: Point(x: 100, y: 150), lineStart: Point(x: 0, y: 100), lineEnd: Point(x: 200, y: 100)),
        .init(name: "Exit", from: Point(x: 100, y: 150), to: Point(x: 100, y: 50), lineStart: Point(x: 0, y: 100), lineEnd: Point(x: 200, y: 100)),
    ])

    @Test func crossingsAreCountedByDirection() {
        var analytics = StreamAnalytics(rules: door)
        var last = FrameAnalytics()
        var crossedOnFrame: [[String]] = []
        // Person 1 walks down through the door, person 2 up through it, person 3 walks beside it
        // (x 300: outside the segment), an untracked person is ignored.
        for step in 0..<10 {
            let down = Float(60 + step * 10), up = Float(140 - step * 10)
            let objects = [person(id: 1, x: 50, y: down), person(id: 2, x: 150, y: up), person(id: 3, x: 300, y: down), person(id: nil, x: 120, y: down)]
            let (frame, perObject) = analytics.process(objects)
            last = frame
            crossedOnFrame.append(perObject.flatMap(\.linesCrossed))
        }
        #expect(last.crossingsSoFar == ["Entry": 1, "Exit": 1])
        #expect(crossedOnFrame.joined().sorted() == ["Entry", "Exit"], "each crossing told once, on its frame: \(crossedOnFrame)")
        // Walking back up, person 1 exits too.
        for step in 0..<10 { last = analytics.process([person(id: 1, x: 50, y: Float(150 - step * 10))]).frame }
        #expect(last.crossingsSoFar == ["Entry": 1, "Exit": 2])
    }

    @Test func regionCountsOvercrowdingAndClassFilters() {
        let box = [Point(x: 0, y: 0), Point(x: 100, y: 0), Point(x: 100, y: 100), Point(x: 0, y: 100)]
        let rules = StreamAnalyticsRules(
            regions: [.init(name: "Lot", polygon: box), .init(name: "Outside", polygon: box, inverse: true),
                      .init(name: "Cars", polygon: box, classes: .only([2]))],
            overcrowding: [.init(name: "Crowd", polygon: box, threshold: 2)])
        var analytics = StreamAnalytics(rules: rules)
        let two = [person(id: nil, x: 10, y: 50), person(id: nil, x: 50, y: 50), person(id: nil, x: 150, y: 50)]
        let (frame, objects) = analytics.process(two)
        #expect(frame.objectsInRegion == ["Lot": 2, "Outside": 1, "Cars": 0])
        #expect(frame.overcrowded == ["Crowd": false], "two is not more than the threshold")
        #expect(objects[0].regions == ["Lot"] && objects[2].regions == ["Outside"])
        let three = two + [person(id: nil, x: 90, y: 90, classID: 2)]
        let crowded = analytics.process(three).frame
        #expect(crowded.overcrowded == ["Crowd": true] && crowded.objectsInRegion["Cars"] == 1)
    }

    @Test func directionIsTheNamedDirectionWithin45Degrees() {
        let rules = StreamAnalyticsRules(directions: [.init(name: "South", from: Point(x: 0, y: 0), to: Point(x: 0, y: 10)),
                                                      .init(name: "East", from: Point(x: 0, y: 0), to: Point(x: 10, y: 0))])
        var analytics = StreamAnalytics(rules: rules)
        _ = analytics.process([person(id: 7, x: 100, y: 100), person(id: 8, x: 100, y: 100)])
        let objects = analytics.process([person(id: 7, x: 102, y: 110), person(id: 8, x: 90, y: 90)]).objects
        #expect(objects[0].direction == "South")
        #expect(objects[1].direction == nil, "moving north-west matches neither")
    }
}

@Suite struct AnalyticsConfigurationTests {
    let config = """
        [property]
        enable=1
        config-width=1920
        config-height=1080
        osd-mode=2

        [roi-filtering-stream-0]
        enable=1
        roi-RF=0;0;960;0;960;540;0;540
        inverse-roi=0
        class-id=-1

        [overcrowding-stream-1]
        enable=1
        roi-OC=0;0;1920;0;1920;1080;0;1080
        object-threshold=3
        class-id=0;2

        [line-crossing-stream-0]
        enable=1
        line-crossing-Entry=960;100;960;900;0;540;1920;540
        class-id=0
        extended=0
        mode=loose

        [direction-detection-stream-0]
        enable=0
        direction-South=0;0;0;100

        [tiler]
        width=2
        """

    @Test func rulesAreReadAndScaledToTheMuxer() throws {
        let (rules, warnings) = try AnalyticsConfiguration.parse(config, path: "analytics.txt", muxerWidth: 960, muxerHeight: 540)
        let stream0 = try #require(rules[0])
        #expect(stream0.regions == [.init(name: "RF", polygon: [Point(x: 0, y: 0), Point(x: 480, y: 0), Point(x: 480, y: 270), Point(x: 0, y: 270)])])
        #expect(stream0.lines == [.init(name: "Entry", from: Point(x: 480, y: 50), to: Point(x: 480, y: 450), lineStart: Point(x: 0, y: 270),
                                        lineEnd: Point(x: 960, y: 270), classes: .only([0]))])
        #expect(stream0.directions.isEmpty, "enable=0: skipped")
        #expect(rules[1]?.overcrowding == [.init(name: "OC", polygon: [Point(x: 0, y: 0), Point(x: 960, y: 0), Point(x: 960, y: 540), Point(x: 0, y: 540)],
                                                 threshold: 3, classes: .only([0, 2]))])
        #expect(warnings == ["analytics.txt:30: unknown group [tiler] (ignored)"], "\(warnings)")
    }

    @Test func aBadValueNamesTheLineAndKey() {
        #expect {
            _ = try AnalyticsConfiguration.parse("[line-crossing-stream-0]\nline-crossing-A=1;2;3\n", path: "a.txt", muxerWidth: 10, muxerHeight: 10)
        } throws: { "\($0)".contains("a.txt:2") && "\($0)".contains("line-crossing-A") }
        #expect {
            _ = try AnalyticsConfiguration.parse("[overcrowding-stream-0]\nobject-threshold=lots\nroi-X=0;0;1;0;1;1\n", path: "a.txt", muxerWidth: 10, muxerHeight: 10)
        } throws: { "\($0)".contains("a.txt:2") && "\($0)".contains("object-threshold") }
    }

    /// Found by fuzzing (scripts/fuzz.sh): an object-threshold beyond Float's range was infinity,
    /// and `Int(_:)` of it trapped. A whole number, as nvdsanalytics reads it.
    @Test(arguments: ["1" + String(repeating: "0", count: 40), "inf", "2.5", "0", "-3"])
    func anObjectThresholdThatIsNoPositiveWholeNumberIsAnError(_ value: String) {
        #expect {
            _ = try AnalyticsConfiguration.parse("[overcrowding-stream-0]\nroi-X=0;0;1;0;1;1\nobject-threshold=\(value)\n",
                                                 path: "a.txt", muxerWidth: 10, muxerHeight: 10)
        } throws: { "\($0)".contains("a.txt:3") && "\($0)".contains("object-threshold") && "\($0)".contains("positive whole number") }
    }

    /// NaN, infinity or a point millions of pixels out (after scaling) would trap the OSD's
    /// conversions to Int when the overlay draws it: refused where it is written.
    @Test(arguments: ["roi-X=0;0;nan;0;1;1", "roi-X=0;0;inf;0;1;1", "roi-X=0;0;1e30;0;1;1", "roi-X=0;0;2000000;0;1;1"])
    func aPointThatIsNoPixelIsAnError(_ line: String) throws {
        #expect {
            _ = try AnalyticsConfiguration.parse("[roi-filtering-stream-0]\n\(line)\n", path: "a.txt", muxerWidth: 10, muxerHeight: 10)
        } throws: { "\($0)".contains("a.txt:2") && "\($0)".contains("roi-X") }
        // Scaling counts: 1 config pixel is 2·10⁶ muxer pixels here.
        #expect {
            _ = try AnalyticsConfiguration.parse("[property]\nconfig-width=0.001\n[roi-filtering-stream-0]\nroi-X=0;0;1;0;1;1\n",
                                                 path: "a.txt", muxerWidth: 2000, muxerHeight: 10)
        } throws: { "\($0)".contains("a.txt:4") }
        #expect {
            _ = try AnalyticsConfiguration.parse("[property]\nconfig-width=inf\n", path: "a.txt", muxerWidth: 10, muxerHeight: 10)
        } throws: { "\($0)".contains("a.txt:2") && "\($0)".contains("config-width") }
        // Beside the frame is allowed.
        let rules = try AnalyticsConfiguration.parse("[roi-filtering-stream-0]\nroi-X=-500;0;1500;0;1;1\n", path: "a.txt", muxerWidth: 10, muxerHeight: 10).rules
        #expect(rules[0]?.regions.first?.polygon.first == Point(x: -500, y: 0))
    }
}

/// What the OSD shows of the analytics (`osd-mode`), as display meta on each frame.
@Suite struct AnalyticsOverlayTests {
    let config = """
        [property]
        enable=1
        config-width=1280
        config-height=720
        osd-mode=%d

        [roi-filtering-stream-0]
        enable=1
        roi-door=100;100;400;100;400;400;100;400

        [overcrowding-stream-0]
        enable=1
        roi-hall=0;0;640;0;640;720;0;720
        object-threshold=1

        [line-crossing-stream-0]
        enable=1
        line-crossing-exit=600;500;700;500;640;300;640;700
        """

    func rules(mode: Int) throws -> StreamAnalyticsRules {
        let text = config.split(separator: "%d", omittingEmptySubsequences: false).joined(separator: String(mode))
        return try #require(AnalyticsConfiguration.parse(text, path: "a.txt", muxerWidth: 1280, muxerHeight: 720).rules[0])
    }

    func batch(_ objects: [ObjectMeta]) -> FrameBatch {
        var batch = FrameBatch(batchID: 0, frames: [])
        batch.meta.frames = [FrameMeta(sourceID: 0, batchID: 0, frameNumber: 0, pts: nil, objects: objects)]
        return batch
    }

    @Test func osdModeTwoDrawsShapesAndCounts() throws {
        let stage = AnalyticsStage(rules: [0: try rules(mode: 2)])
        var b = batch([ObjectMeta(classID: 0, label: "person", confidence: 0.9, rect: Rect(left: 200, top: 200, width: 50, height: 100), detectorID: 1),
                       ObjectMeta(classID: 0, label: "person", confidence: 0.9, rect: Rect(left: 300, top: 500, width: 50, height: 100), detectorID: 1)])
        try stage.process(&b)
        let display = b.meta.frames[0].display
        // The region's 4 edges, the hall's 4, the line and its direction arrow (shaft and head: 3).
        #expect(display.lines.count == 4 + 4 + 1 + 3)
        #expect(display.lines.contains { $0.from == Point(x: 640, y: 300) && $0.to == Point(x: 640, y: 700) })
        #expect(display.lines.filter { $0.colour == AnalyticsOverlay.overcrowdedColour }.count == 4, "two in the hall: over its threshold of 1")
        #expect(display.texts.map(\.text) == ["ROI door: 1", "Crowd hall: over 1", "Line exit: 0"])
        #expect(display.texts.allSatisfy { $0.origin == AnalyticsOverlay.textOrigin }, "stacked at one origin")
    }

    @Test func osdModeOneDrawsShapesOnlyAndZeroNothing() throws {
        var b = batch([])
        try AnalyticsStage(rules: [0: try rules(mode: 1)]).process(&b)
        #expect(b.meta.frames[0].display.lines.count == 12)
        #expect(b.meta.frames[0].display.texts.isEmpty)
        b = batch([])
        try AnalyticsStage(rules: [0: try rules(mode: 0)]).process(&b)
        #expect(b.meta.frames[0].display.isEmpty)
        #expect(b.meta.frames[0].analytics != nil, "the analytics still run")
        #expect(throws: InferConfigurationError.self) { try rules(mode: 3) }
    }
}
