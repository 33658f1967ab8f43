import Foundation
import Logging
import Testing
@testable import Tributary

@Suite struct AssignmentTests {
    @Test func theLeastTotalCostWins() {
        // Greedy would take (0, 0) = 1 and then pay 9 for row 1; the optimum is 2 + 2 + 1 = 5.
        let cost: [Double] = [1, 2, 9,
                              2, 9, 9,
                              9, 9, 1]
        #expect(Assignment.minimumCost(cost, rows: 3, columns: 3) == [1, 0, 2])
    }

    @Test func rectangularMatricesLeaveTheExtraRowsOrColumns() {
        // Two rows, three columns: each row its best free column.
        #expect(Assignment.minimumCost([5, 1, 9, 4, 2, 0], rows: 2, columns: 3) == [1, 2])
        // Three rows, two columns: the row that costs most to serve goes without.
        #expect(Assignment.minimumCost([1, 9, 9, 1, 5, 5], rows: 3, columns: 2) == [0, 1, nil])
        #expect(Assignment.minimumCost([], rows: 0, columns: 4) == [])
        #expect(Assignment.minimumCost([], rows: 2, columns: 0) == [nil, nil])
    }
}

@Suite struct ObjectTrackerTests {
    func box(_ x: Float, _ y: Float, _ w: Float = 40, _ h: Float = 80) -> Rect { Rect(left: x, top: y, width: w, height: h) }
    func person(_ rect: Rect, confidence: Float = 0.9) -> Detection { Detection(classID: 0, confidence: confidence, rect: rect) }

    /// Two people walk towards each other and cross (their boxes overlap for some frames): with
    /// SORT's velocities each keeps its id.
    @Test func crossingObjectsKeepTheirIDs() {
        var tracker = ObjectTracker(configuration: TrackerConfiguration(kind: .sort, minHits: 1))
        var idOfLeftWalker: UInt64?, idOfRightWalker: UInt64?
        for frame in 0..<30 {
            let left = person(box(Float(frame * 10), 100)), right = person(box(Float(290 - frame * 10), 104))
            let ids = tracker.update([left, right])
            if frame == 0 { (idOfLeftWalker, idOfRightWalker) = (ids[0], ids[1]) }
            #expect(ids == [idOfLeftWalker, idOfRightWalker], "frame \(frame): \(ids)")
        }
        #expect(idOfLeftWalker != nil && idOfLeftWalker != idOfRightWalker)
    }

    @Test(arguments: TrackerConfiguration.Kind.allCases)
    func aTrackMissingForMaxAgeFramesKeepsItsIDAndOneMoreEndsIt(kind: TrackerConfiguration.Kind) {
        let maxAge = 5
        var tracker = ObjectTracker(configuration: TrackerConfiguration(kind: kind, maxAge: maxAge, minHits: 1))
        let still = person(box(100, 100))
        let id = tracker.update([still])[0]
        for _ in 0..<maxAge { #expect(tracker.update([]).isEmpty) }
        #expect(tracker.update([still])[0] == id, "missing for max-age frames: the same id")
        for _ in 0..<(maxAge + 1) { _ = tracker.update([]) }
        #expect(tracker.tracks.isEmpty, "missing for max-age + 1 frames: the track ended")
        let again = tracker.update([still])[0]
        #expect(again != nil && again! > id!, "ids are never reused")
    }

    @Test func anIDShowsOnceTheTrackHasMinHitsMatches() {
        var tracker = ObjectTracker(configuration: TrackerConfiguration(kind: .sort, minHits: 3))
        let still = person(box(50, 50))
        #expect(tracker.update([still]) == [nil])
        #expect(tracker.update([still]) == [nil])
        let shown = tracker.update([still])[0]
        #expect(shown != nil)
        #expect(tracker.update([still]) == [shown])
    }

    @Test func aDetectionOfAnotherClassStartsItsOwnTrack() {
        var tracker = ObjectTracker(configuration: TrackerConfiguration(kind: .iou, minHits: 1))
        let personID = tracker.update([person(box(10, 10))])[0]
        let car = Detection(classID: 2, confidence: 0.8, rect: box(10, 10))
        let carID = tracker.update([car])[0]
        #expect(carID != nil && carID != personID)
        var agnostic = ObjectTracker(configuration: TrackerConfiguration(kind: .iou, minHits: 1, classAgnostic: true))
        let first = agnostic.update([person(box(10, 10))])[0]
        #expect(agnostic.update([car])[0] == first, "class-agnostic: the same object")
    }

    /// The same detections in, the same ids out.
    @Test(arguments: TrackerConfiguration.Kind.allCases)
    func theSameDetectionsGiveTheSameIDs(kind: TrackerConfiguration.Kind) {
        var generator = SeededGenerator(seed: 7)
        let frames: [[Detection]] = (0..<40).map { frame in
            (0..<6).compactMap { object -> Detection? in
                guard Float.random(in: 0..<1, using: &generator) > 0.1 else { return nil }  // ~10 % missed
                let x = Float(object * 60 + frame * 3) + Float.random(in: -2...2, using: &generator)
                return person(box(x, Float(object * 30) + Float.random(in: -2...2, using: &generator)))
            }
        }
        func run() -> [[UInt64?]] {
            var tracker = ObjectTracker(configuration: TrackerConfiguration(kind: kind, minHits: 2))
            return frames.map { tracker.update($0) }
        }
        let first = run()
        #expect(first == run())
        #expect(Set(first.joined().compactMap { $0 }).count >= 6, "every object got an id")
    }
}

/// The tracker stage on batches: ids on detected frames, the tracks' boxes on skipped frames.
@Suite struct TrackerStageTests {
    func batch(_ id: Int, frames: [(source: Int, objects: [ObjectMeta]?)]) -> FrameBatch {
        var batch = FrameBatch(batchID: id, frames: [])
        batch.meta.frames = frames.enumerated().map { index, frame in
            var meta = FrameMeta(sourceID: frame.source, batchID: id, frameNumber: id, pts: nil, objects: frame.objects ?? [])
            meta.inferenceDone = frame.objects != nil  // nil: a frame the detector's interval skipped
            return meta
        }
        return batch
    }

    func person(x: Float) -> ObjectMeta {
        ObjectMeta(classID: 0, label: "person", confidence: 0.8, rect: Rect(left: x, top: 10, width: 20, height: 40), detectorID: 1)
    }

    @Test func skippedFramesCarryTheTracksAndEachSourceHasItsOwnIDs() throws {
        let stage = TrackerStage(configuration: TrackerConfiguration(kind: .sort, minHits: 1))
        var ids: [[UInt64?]] = []
        for frame in 0..<6 {
            // The detector runs on even frames (interval=1); source 1 has its own walker.
            let detected = frame % 2 == 0
            var b = batch(frame, frames: [(0, detected ? [person(x: Float(frame * 4))] : nil),
                                          (1, detected ? [person(x: Float(200 - frame * 4))] : nil)])
            try stage.process(&b)
            #expect(b.meta.frames.allSatisfy { $0.objects.count == 1 }, "frame \(frame): every frame shows its walker")
            #expect(b.meta.frames.allSatisfy { $0.objects[0].isTracked == !detected })
            ids.append(b.meta.frames.map { $0.objects[0].trackerID })
            if !detected {
                // The carried box moves on with the walker's velocity (SORT predicts).
                let carried = b.meta.frames[0].objects[0].rect.left
                #expect(carried > Float((frame - 1) * 4) - 0.5, "frame \(frame): \(carried)")
            }
        }
        #expect(Set(ids.map { $0[0] }).count == 1 && Set(ids.map { $0[1] }).count == 1, "\(ids)")
        #expect(ids[0][0] == ids[0][1], "ids count per source: each source's first track is 1")
    }
}

/// The tracker behind the real detector on the sample video: an object's id persists from frame
/// to frame wherever the detector sees it on both.
@Suite(.serialized) struct TrackerOnTheSampleTests {
    @Test(.runningTimeLimit(minutes: 3))
    func idsPersistOnTheSampleVideo() throws {
        try TestMedia.requireMedia()
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mp4").path
        try makeShortSampleClip(at: clip, frames: 80)
        var inference = try InferConfiguration.load(path: DetectorTests.configPath)
        inference.tracker = TrackerConfiguration(kind: .sort, minHits: 1)
        let logger = Logger(label: "test")
        let pipeline = try Pipeline(configuration: PipelineConfiguration(
            inputs: [try SourceURI(clip)], muxer: StreamMuxerConfiguration(batchSize: 1, width: 768, height: 576, batchedPushTimeoutMicroseconds: -1),
            outputs: [.discard], osd: false, perfIntervalNanoseconds: 0),
            detector: try Detector.load(configuration: inference, logger: logger), logger: logger)
        var frames: [[ObjectMeta]] = []
        pipeline.probe = { batch in frames.append(batch.meta.frames[0].objects) }
        #expect(pipeline.run().succeeded)
        #expect(frames.count == 80)
        // Pairs of detections on consecutive frames that are the same object (same class, IoU ≥ 0.5,
        // each matched once): how many keep their id.
        var pairs = 0, kept = 0
        for (previous, current) in zip(frames, frames.dropFirst()) {
            var used = Set<Int>()
            for object in current {
                guard let match = previous.indices.filter({ !used.contains($0) && previous[$0].classID == object.classID })
                    .max(by: { Clustering.iou(previous[$0].rect, object.rect) < Clustering.iou(previous[$1].rect, object.rect) }),
                      Clustering.iou(previous[match].rect, object.rect) >= 0.5 else { continue }
                used.insert(match)
                pairs += 1
                if object.trackerID != nil && object.trackerID == previous[match].trackerID { kept += 1 }
            }
        }
        let share = Double(kept) / Double(max(1, pairs))
        print("ids kept on \(kept) of \(pairs) consecutive detections of the same object (\(share)); switch rate \(1 - share)")
        #expect(pairs > 100, "the sample shows people on most frames")
        #expect(share >= 0.8, "ids kept on \(kept) of \(pairs)")
    }
}
