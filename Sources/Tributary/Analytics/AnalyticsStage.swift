/// The analytics as a stage, after the tracker (crossings and directions follow track ids) and
/// before the probe: each frame of a source with rules gets its `FrameAnalytics`, each object its
/// `ObjectAnalytics`, and its display meta what the rules' `overlay` shows. Each source's latest
/// results stay readable from other threads (`/metrics` reads them at a scrape).
public final class AnalyticsStage: BatchStage {
    private var streams: [Int: StreamAnalytics]
    private let latest = Locked([Int: FrameAnalytics]())

    /// - Parameter rules: by source id (nvdsanalytics' stream index); sources without rules pass.
    public init(rules: [Int: StreamAnalyticsRules]) {
        streams = rules.mapValues { StreamAnalytics(rules: $0) }
    }

    /// Each source's results on its latest frame (sources with rules that had a frame).
    public var latestResults: [Int: FrameAnalytics] { latest.withValue { $0 } }

    public func process(_ batch: inout FrameBatch) throws {
        var results: [(Int, FrameAnalytics)] = []
        for index in batch.meta.frames.indices {
            let source = batch.meta.frames[index].sourceID
            guard streams[source] != nil else { continue }
            let (frame, objects) = streams[source]!.process(batch.meta.frames[index].objects)
            batch.meta.frames[index].analytics = frame
            let rules = streams[source]!.rules
            if rules.overlay != .none {
                let shown = rules.overlay.display(of: rules, results: frame)
                batch.meta.frames[index].display.lines += shown.lines
                batch.meta.frames[index].display.texts += shown.texts
            }
            for (objectIndex, analytics) in objects.enumerated() { batch.meta.frames[index].objects[objectIndex].analytics = analytics }
            results.append((source, frame))
        }
        if !results.isEmpty { latest.withValue { for (source, frame) in results { $0[source] = frame } } }
    }
}
