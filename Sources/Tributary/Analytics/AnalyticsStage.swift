/// The analytics as a stage, after the tracker (crossings and directions follow track ids) and
/// before the probe: each frame of a source with rules gets its `FrameAnalytics`, each object its
/// `ObjectAnalytics`.
public final class AnalyticsStage: BatchStage {
    private var streams: [Int: StreamAnalytics]

    /// - Parameter rules: by source id (nvdsanalytics' stream index); sources without rules pass.
    public init(rules: [Int: StreamAnalyticsRules]) {
        streams = rules.mapValues { StreamAnalytics(rules: $0) }
    }

    public func process(_ batch: inout FrameBatch) throws {
        for index in batch.meta.frames.indices {
            let source = batch.meta.frames[index].sourceID
            guard streams[source] != nil else { continue }
            let (frame, objects) = streams[source]!.process(batch.meta.frames[index].objects)
            batch.meta.frames[index].analytics = frame
            for (objectIndex, analytics) in objects.enumerated() { batch.meta.frames[index].objects[objectIndex].analytics = analytics }
        }
    }
}
