import Foundation
import Testing
@testable import Tributary

/// The tracker against an independent evaluator: detections made from MOT ground truth (the
/// sequences motmetrics ships in its wheel) with noise — boxes jittered, ~10 % missed, ~5 % false
/// positives, a fixed seed — tracked, and scored by motmetrics (MOTA, IDF1) in the checkers' venv.
@Suite(.serialized) struct TrackerMOTTests {
    static let checkers = TestMedia.path(".deps/checkers")
    static var motData: String? {
        let lib = checkers + "/lib"
        guard let python = (try? FileManager.default.contentsOfDirectory(atPath: lib))?.first(where: { $0.hasPrefix("python3") }) else { return nil }
        return "\(lib)/\(python)/site-packages/motmetrics/data"
    }

    /// One ground-truth box: frame (from 1), object id, box.
    struct Row { let frame: Int; let id: Int; let box: Rect }

    static func groundTruth(_ sequence: String) throws -> [Row] {
        let path = try #require(motData, "motmetrics missing: run scripts/setup.sh") + "/\(sequence)/gt.txt"
        // Lines end in CR LF there: one Character in Swift, so split on any newline.
        return try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline).compactMap { line in
            let f = line.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) ?? 0 }
            guard f.count >= 6 else { return nil }
            return Row(frame: Int(f[0]), id: Int(f[1]), box: Rect(left: Float(f[2]), top: Float(f[3]), width: Float(f[4]), height: Float(f[5])))
        }
    }

    /// Per frame, the noisy detections: each box jittered by up to 4 % of its size, 10 % missed,
    /// and a false positive on ~5 % of the boxes' count, at random places.
    static func noisyDetections(_ rows: [Row], seed: UInt64) -> [[Detection]] {
        var generator = SeededGenerator(seed: seed)
        let frames = rows.map(\.frame).max() ?? 0
        var detections = [[Detection]](repeating: [], count: frames + 1)
        for row in rows {
            guard Double.random(in: 0..<1, using: &generator) >= 0.10 else { continue }
            func jitter(_ size: Float) -> Float { Float.random(in: -0.04...0.04, using: &generator) * size }
            let b = row.box
            let box = Rect(left: b.left + jitter(b.width), top: b.top + jitter(b.height),
                           width: b.width + jitter(b.width), height: b.height + jitter(b.height))
            detections[row.frame].append(Detection(classID: 0, confidence: 0.9, rect: box))
        }
        for _ in 0..<(rows.count / 20) {
            let frame = Int.random(in: 1...frames, using: &generator)
            let box = Rect(left: Float.random(in: 0...600, using: &generator), top: Float.random(in: 0...300, using: &generator),
                           width: Float.random(in: 30...120, using: &generator), height: Float.random(in: 60...240, using: &generator))
            detections[frame].append(Detection(classID: 0, confidence: 0.5, rect: box))
        }
        return detections
    }

    /// MOTA and IDF1 of `kind` on `sequence`, by motmetrics.
    static func score(_ kind: TrackerConfiguration.Kind, sequence: String) throws -> (mota: Double, idf1: Double, line: String) {
        let rows = try groundTruth(sequence)
        let frames = noisyDetections(rows, seed: 2026)
        var tracker = ObjectTracker(configuration: TrackerConfiguration(kind: kind, maxAge: 5, minHits: 2, iouThreshold: 0.3))
        var lines: [String] = []
        for (frame, detections) in frames.enumerated() where frame > 0 {
            let ids = tracker.update(detections)
            for (detection, id) in zip(detections, ids) {
                guard let id else { continue }
                let r = detection.rect
                lines.append("\(frame),\(id),\(r.left),\(r.top),\(r.width),\(r.height),1,-1,-1,-1")
            }
        }
        let folder = try TestMedia.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let hypothesis = folder.appendingPathComponent("\(kind.rawValue).txt").path
        try lines.joined(separator: "\n").appending("\n").write(toFile: hypothesis, atomically: true, encoding: .utf8)
        let result = try runProcess(checkers + "/bin/python", [TestMedia.path("tests/python/mot_eval.py"),
                                                                try #require(motData) + "/\(sequence)/gt.txt", hypothesis], timeout: 120)
        let line = result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = line.split(separator: " ")
        guard result.status == 0, parts.count >= 4, let mota = Double(parts[1]), let idf1 = Double(parts[3]) else {
            throw PipelineError.failed(what: "mot_eval.py", message: "\(result.standardOutput) \(result.standardError)")
        }
        return (mota, idf1, line)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: checkers + "/bin/python"), "the checkers' venv is missing: run scripts/setup.sh"),
          arguments: ["TUD-Campus", "TUD-Stadtmitte"])
    func sortMeetsTheBarAndIOUIsReported(sequence: String) throws {
        let sort = try Self.score(.sort, sequence: sequence)
        let iou = try Self.score(.iou, sequence: sequence)
        print("\(sequence): sort \(sort.line); iou \(iou.line)")
        #expect(sort.mota >= 0.8, "sort on \(sequence): \(sort.line)")
        #expect(sort.idf1 >= 0.7, "sort on \(sequence): \(sort.line)")
    }
}
