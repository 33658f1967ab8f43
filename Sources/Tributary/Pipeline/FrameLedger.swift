/// Why a frame did not reach a batch.
public enum DropReason: String, Sendable, CaseIterable {
    /// A live source's queue was full; its oldest frame made room for the newest.
    case liveQueueFull = "live queue full"
    /// The pipeline was stopping and the frame was still queued.
    case shutdown = "shutdown"
}

/// Accounting for every frame decoded: each is counted once as delivered in a batch or as dropped
/// with a reason. The exit summary and the tests read it.
public final class FrameLedger: @unchecked Sendable {
    public struct SourceCounts: Sendable, Equatable {
        public var decoded = 0
        public var delivered = 0
        public var dropped: [String: Int] = [:]
        public var droppedTotal: Int { dropped.values.reduce(0, +) }
        /// Decoded frames neither delivered nor dropped (still in flight); 0 after a clean run.
        public var unaccounted: Int { decoded - delivered - droppedTotal }
    }

    private let state: Locked<[SourceCounts]>

    public init(sourceCount: Int) { state = Locked(Array(repeating: SourceCounts(), count: sourceCount)) }

    public func recordDecoded(source: Int) { state.withValue { $0[source].decoded += 1 } }
    public func recordDelivered(source: Int, count: Int = 1) { state.withValue { $0[source].delivered += count } }
    public func recordDropped(source: Int, reason: DropReason, count: Int = 1) {
        state.withValue { $0[source].dropped[reason.rawValue, default: 0] += count }
    }

    public func counts(of source: Int) -> SourceCounts { state.withValue { $0[source] } }
    public var allCounts: [SourceCounts] { state.withValue { $0 } }

    /// One line per source, for the exit summary; `firstSourceID` numbers a GPU shard's sources
    /// as the run's inputs.
    public func summaryLines(uris: [String], firstSourceID: Int = 0) -> [String] {
        allCounts.enumerated().map { index, c in
            var line = "source \(firstSourceID + index) (\(index < uris.count ? uris[index] : "?")): decoded \(c.decoded), delivered \(c.delivered), dropped \(c.droppedTotal)"
            if !c.dropped.isEmpty {
                line += " (" + c.dropped.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")"
            }
            return line
        }
    }
}
