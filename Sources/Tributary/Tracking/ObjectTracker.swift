/// How objects are followed from frame to frame, as nvtracker's settings name it.
public struct TrackerConfiguration: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Greedy IoU matching against each track's last box (DeepStream's IOU tracker).
        case iou
        /// A constant-velocity Kalman filter per track, optimal assignment on IoU (SORT / NvSORT).
        case sort
    }

    public var kind: Kind
    /// Frames a track lives on without a matching detection.
    public var maxAge: Int
    /// Matches before a track is confirmed and its id shown.
    public var minHits: Int
    /// The least IoU of a detection with a track's (predicted) box for them to match.
    public var iouThreshold: Float
    /// Match across classes; otherwise a detection matches only tracks of its class.
    public var classAgnostic: Bool

    public init(kind: Kind = .sort, maxAge: Int = 30, minHits: Int = 3, iouThreshold: Float = 0.3, classAgnostic: Bool = false) {
        precondition(maxAge >= 0 && minHits >= 1)
        self.kind = kind
        self.maxAge = maxAge
        self.minHits = minHits
        self.iouThreshold = iouThreshold
        self.classAgnostic = classAgnostic
    }
}

/// One source's multi-object tracker: each frame's detections in, each one's track id out. Pure
/// and deterministic — the same detections give the same ids; ids count up from `firstID` and
/// are never reused.
public struct ObjectTracker: Sendable {
    /// A followed object.
    public struct Track: Sendable, Equatable {
        public let id: UInt64
        public let classID: Int
        /// Its box now: the last match (IoU tracker) or the filter's estimate (SORT).
        public var box: Rect
        public var confidence: Float
        /// Matches so far.
        public var hits: Int
        /// Frames since its last match (0: matched this frame).
        public var framesUnmatched: Int
        public var isConfirmed: Bool
    }

    public let configuration: TrackerConfiguration
    public private(set) var tracks: [Track] = []
    private var filters: [KalmanBoxFilter] = []
    private var nextID: UInt64

    public init(configuration: TrackerConfiguration, firstID: UInt64 = 1) {
        self.configuration = configuration
        nextID = firstID
    }

    /// Takes one frame's detections (after the detector ran on it).
    /// - Returns: each detection's track id, in order; nil while its track is not yet confirmed
    ///   (fewer than `minHits` matches).
    public mutating func update(_ detections: [Detection]) -> [UInt64?] {
        advanceFilters()
        for i in tracks.indices { tracks[i].framesUnmatched += 1 }
        let matches = configuration.kind == .sort ? optimalMatches(detections) : greedyMatches(detections)
        var ids = [UInt64?](repeating: nil, count: detections.count)
        for (detection, trackIndex) in matches.enumerated() {
            let found = detections[detection]
            guard let trackIndex else {
                ids[detection] = startTrack(found)
                continue
            }
            if configuration.kind == .sort {
                filters[trackIndex].update(found.rect)
                tracks[trackIndex].box = filters[trackIndex].box
            } else {
                tracks[trackIndex].box = found.rect
            }
            tracks[trackIndex].confidence = found.confidence
            tracks[trackIndex].hits += 1
            tracks[trackIndex].framesUnmatched = 0
            if tracks[trackIndex].hits >= configuration.minHits { tracks[trackIndex].isConfirmed = true }
            ids[detection] = tracks[trackIndex].isConfirmed ? tracks[trackIndex].id : nil
        }
        // Tracks unmatched for longer than max-age end.
        let keep = tracks.indices.filter { tracks[$0].framesUnmatched <= configuration.maxAge }
        if keep.count < tracks.count {
            tracks = keep.map { tracks[$0] }
            if configuration.kind == .sort { filters = keep.map { filters[$0] } }
        }
        return ids
    }

    /// One frame on without a detector run (`interval`): each track matched or born at the last
    /// detection — the objects that frame showed, confirmed or not, so counts stay continuous —
    /// at its predicted box (SORT) or its last one (IoU tracker). No track ages: only frames the
    /// detector ran on count towards `maxAge`.
    public mutating func predict() -> [Track] {
        advanceFilters()
        return tracks.filter { $0.framesUnmatched == 0 }
    }

    /// SORT: every track's filter one frame on, its box the filter's estimate.
    private mutating func advanceFilters() {
        guard configuration.kind == .sort else { return }
        for i in filters.indices {
            filters[i].predict()
            tracks[i].box = filters[i].box
        }
    }

    /// A new track for an unmatched detection; its id if confirmed at once (`minHits` 1).
    private mutating func startTrack(_ detection: Detection) -> UInt64? {
        let track = Track(id: nextID, classID: detection.classID, box: detection.rect, confidence: detection.confidence,
                          hits: 1, framesUnmatched: 0, isConfirmed: configuration.minHits <= 1)
        nextID += 1
        tracks.append(track)
        if configuration.kind == .sort { filters.append(KalmanBoxFilter(detection.rect)) }
        return track.isConfirmed ? track.id : nil
    }

    private func canMatch(_ detection: Detection, _ track: Track) -> Bool {
        configuration.classAgnostic || detection.classID == track.classID
    }

    /// SORT: the assignment of least total (1 − IoU), pairs under the IoU threshold refused.
    /// - Returns: per detection, the index of its track (nil: none).
    private func optimalMatches(_ detections: [Detection]) -> [Int?] {
        guard !tracks.isEmpty, !detections.isEmpty else { return Array(repeating: nil, count: detections.count) }
        var cost = [Double](repeating: 1, count: detections.count * tracks.count)
        for (d, detection) in detections.enumerated() {
            for (t, track) in tracks.enumerated() where canMatch(detection, track) {
                cost[d * tracks.count + t] = 1 - Double(Clustering.iou(detection.rect, track.box))
            }
        }
        return Assignment.minimumCost(cost, rows: detections.count, columns: tracks.count).enumerated().map { d, t in
            guard let t, 1 - cost[d * tracks.count + t] >= Double(configuration.iouThreshold) else { return nil }
            return t
        }
    }

    /// IOU tracker: pairs taken greedily by descending IoU (ties: lower detection, then track
    /// index first), each detection and track once.
    private func greedyMatches(_ detections: [Detection]) -> [Int?] {
        var pairs: [(iou: Float, detection: Int, track: Int)] = []
        for (d, detection) in detections.enumerated() {
            for (t, track) in tracks.enumerated() where canMatch(detection, track) {
                let iou = Clustering.iou(detection.rect, track.box)
                if iou >= configuration.iouThreshold { pairs.append((iou, d, t)) }
            }
        }
        pairs.sort { ($0.iou, -$0.detection, -$0.track) > ($1.iou, -$1.detection, -$1.track) }
        var matches = [Int?](repeating: nil, count: detections.count)
        var trackTaken = [Bool](repeating: false, count: tracks.count)
        for pair in pairs where matches[pair.detection] == nil && !trackTaken[pair.track] {
            matches[pair.detection] = pair.track
            trackTaken[pair.track] = true
        }
        return matches
    }
}
