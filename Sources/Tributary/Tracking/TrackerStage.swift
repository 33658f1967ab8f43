/// The tracker as a stage, after the detector and before the probe: one `ObjectTracker` per
/// source. On frames the detector ran on, each object gets its track's id (`trackerID`, once the
/// track is confirmed); on the frames its `interval` skips, the tracks of the last detected frame's
/// objects carry them on (`isTracked`, at the tracker's box, with the last confidence), so the
/// counts and the OSD stay continuous.
public final class TrackerStage: BatchStage {
    public let configuration: TrackerConfiguration
    /// By source id; a source's tracker is made at its first frame.
    private var trackers: [Int: ObjectTracker] = [:]
    /// The detector's label and id of each class seen, for the objects the tracker carries.
    private var labels: [Int: (label: String, detectorID: Int)] = [:]

    public init(configuration: TrackerConfiguration) { self.configuration = configuration }

    public func process(_ batch: inout FrameBatch) throws {
        for index in batch.meta.frames.indices {
            let source = batch.meta.frames[index].sourceID
            // Mutated where it lies in the dictionary: a copy would copy its tracks every frame.
            if trackers[source] == nil { trackers[source] = ObjectTracker(configuration: configuration) }
            if batch.meta.frames[index].inferenceDone {
                let objects = batch.meta.frames[index].objects
                for object in objects where labels[object.classID] == nil { labels[object.classID] = (object.label, object.detectorID) }
                let ids = trackers[source]!.update(objects.map { Detection(classID: $0.classID, confidence: $0.confidence, rect: $0.rect) })
                for (objectIndex, id) in ids.enumerated() { batch.meta.frames[index].objects[objectIndex].trackerID = id }
            } else {
                batch.meta.frames[index].objects = trackers[source]!.predict().map { track in
                    let known = labels[track.classID] ?? ("class\(track.classID)", 0)
                    var object = ObjectMeta(classID: track.classID, label: known.label, confidence: track.confidence, rect: track.box,
                                            detectorID: known.detectorID, trackerID: track.isConfirmed ? track.id : nil)
                    object.isTracked = true
                    return object
                }
            }
        }
    }
}
