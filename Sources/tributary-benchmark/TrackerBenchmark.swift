import Logging
import Tributary
import TributarySample

extension TributaryBenchmark {
    /// `--tracker-table`: (1) the tracker's cost per frame with 10 and 50 objects moving, each
    /// kind; (2) the CPU pipeline with the detector every frame (`interval=0`) against every 2nd
    /// and 3rd frame with the sort tracker between, at each `--streams` count, and how far the
    /// per-frame counts move from `interval=0`'s on the same frames: the Person and Vehicle counts
    /// the sample prints (the measure), and all four of its classes (stricter: a traffic
    /// light that flickers in and out counts too).
    func trackerTable(uri: SourceURI, configuration: InferConfiguration, logger: Logger) throws {
        print("Tracker cost per frame (median of \(repetitions) runs of 300 frames; objects moving, 5 % missed a frame)")
        print("| objects | iou µs/frame | sort µs/frame |")
        print("|---|---|---|")
        for objects in [10, 50] {
            let iou = try median { trackerMilliseconds(.iou, objects: objects) }
            let sort = try median { trackerMilliseconds(.sort, objects: objects) }
            print("| \(objects) | \(f(iou * 1000)) | \(f(sort * 1000)) |")
        }
        print("")
        print("Detector every k+1-th frame, sort tracker between: \(input), muxer \(width)×\(height), \(frames) frames per stream, "
              + "median of \(repetitions); aggregate frames per second")
        print("| N | interval 0 fps | interval 1 fps | × | interval 2 fps | × | Person/Vehicle within ±1 (interval 1) | (interval 2) "
              + "| all 4 classes within ±1 (interval 1) | (interval 2) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in streams {
            var fps: [Double] = [], counts: [[String: [SampleClass: Int]]] = []
            for interval in 0...2 {
                var detector = configuration
                detector.interval = interval
                detector.tracker = TrackerConfiguration(kind: .sort)
                let seen = Locked<[String: [SampleClass: Int]]>([:])
                fps.append(try median {
                    seen.withValue { $0 = [:] }
                    return try pipelineFPS(uri, n, detector: detector, outputs: [.discard], onFrames: { frames in
                        seen.withValue { for frame in frames { $0["\(frame.sourceID)/\(frame.frameNumber)"] = SampleClass.counts(frame.objects) } }
                    }, logger)
                })
                counts.append(seen.withValue { $0 })
            }
            func agreement(_ k: Int, classes: [SampleClass]) -> String {
                let keys = counts[0].keys.filter { counts[k][$0] != nil }
                let close = keys.filter { key in
                    classes.allSatisfy { abs(counts[0][key]![$0, default: 0] - counts[k][key]![$0, default: 0]) <= 1 }
                }
                return "\(f(keys.isEmpty ? 0 : Double(close.count) / Double(keys.count) * 100)) %"
            }
            let printed: [SampleClass] = [.person, .vehicle]
            print("| \(n) | \(f(fps[0])) | \(f(fps[1])) | \(f(fps[1] / fps[0])) | \(f(fps[2])) | \(f(fps[2] / fps[0])) | "
                  + "\(agreement(1, classes: printed)) | \(agreement(2, classes: printed)) | "
                  + "\(agreement(1, classes: SampleClass.allCases)) | \(agreement(2, classes: SampleClass.allCases)) |")
            flushStandardOutput()
        }
    }

    /// Milliseconds a frame of `ObjectTracker.update` takes with `objects` moving objects.
    private func trackerMilliseconds(_ kind: TrackerConfiguration.Kind, objects: Int) -> Double {
        var tracker = ObjectTracker(configuration: TrackerConfiguration(kind: kind))
        var state: UInt64 = 12345
        func random() -> Float {  // deterministic noise (an LCG is enough here)
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        let frames: [[Detection]] = (0..<300).map { frame in
            (0..<objects).compactMap { object in
                guard random() > 0.05 else { return nil }
                let x = Float((object % 10) * 180 + frame * 2) + random() * 2, y = Float((object / 10) * 200) + random() * 2
                return Detection(classID: 0, confidence: 0.9, rect: Rect(left: x, top: y, width: 60, height: 150))
            }
        }
        let clock = MonotonicClock(), start = clock.now()
        for detections in frames { _ = tracker.update(detections) }
        return Double(clock.now().nanoseconds(since: start)) / 1e6 / Double(frames.count)
    }
}
