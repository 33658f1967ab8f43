/// Why a frame did not reach a batch.
public enum DropReason: String, Sendable, CaseIterable {
    /// A live source's queue was full; its oldest frame made room for the newest.
    case liveQueueFull = "live queue full"
    /// The pipeline was stopping and the frame was still queued.
    case shutdown = "shutdown"
    /// The source was removed (`removeSource` with `.drop`) with the frame still queued or in hand.
    case sourceRemoved = "source removed"
}

/// Accounting for every frame decoded: each is counted once as delivered in a batch or as dropped
/// with a reason. Keyed by source id: sources added while a pipeline runs get an entry, and a
/// removed source keeps its own for the summary. The exit summary and the tests read it.
public final class FrameLedger: @unchecked Sendable {
    public struct SourceCounts: Sendable, Equatable {
        public var decoded = 0
        public var delivered = 0
        public var dropped: [String: Int] = [:]
        /// A live source's recoveries, and the time it was gone across them (frames it never sent:
        /// frame numbers go on after the gap).
        public var reconnects = 0
        public var gapNanoseconds: UInt64 = 0
        /// Frames the decoder lost (gaps in a file's timestamps: a corrupt or cut stream). Never
        /// decoded, so outside `decoded = delivered + dropped`.
        public var lostInDecoder = 0
        public var droppedTotal: Int { dropped.values.reduce(0, +) }
        /// Decoded frames neither delivered nor dropped (still in flight); 0 after a clean run.
        public var unaccounted: Int { decoded - delivered - droppedTotal }

        public init(decoded: Int = 0, delivered: Int = 0, dropped: [String: Int] = [:]) {
            self.decoded = decoded
            self.delivered = delivered
            self.dropped = dropped
        }
    }

    private let state: Locked<[Int: SourceCounts]>

    /// Entries for sources `0..<sourceCount`.
    public init(sourceCount: Int) {
        state = Locked(Dictionary(uniqueKeysWithValues: (0..<sourceCount).map { ($0, SourceCounts()) }))
    }

    /// An entry for a new source (counted from zero), so that it is listed even before its first frame.
    public func addSource(_ id: Int) { state.withValue { _ = $0[id, default: SourceCounts()] } }

    public func recordDecoded(source: Int) { state.withValue { $0[source, default: SourceCounts()].decoded += 1 } }
    public func recordDelivered(source: Int, count: Int = 1) { state.withValue { $0[source, default: SourceCounts()].delivered += count } }
    public func recordDropped(source: Int, reason: DropReason, count: Int = 1) {
        state.withValue { $0[source, default: SourceCounts()].dropped[reason.rawValue, default: 0] += count }
    }

    /// Frames the decoder lost before `source`'s next frame (`TimestampGaps`).
    public func recordDecoderLoss(source: Int, count: Int) {
        state.withValue { $0[source, default: SourceCounts()].lostInDecoder += count }
    }

    /// A live source came back after a loss of `gapNanoseconds` (last frame before → first after).
    public func recordReconnect(source: Int, gapNanoseconds: UInt64) {
        state.withValue {
            $0[source, default: SourceCounts()].reconnects += 1
            $0[source, default: SourceCounts()].gapNanoseconds += gapNanoseconds
        }
    }

    /// A source's counts (zero for a source never seen).
    public func counts(of source: Int) -> SourceCounts { state.withValue { $0[source] ?? SourceCounts() } }
    /// Every source the ledger has seen, ascending.
    public var sourceIDs: [Int] { state.withValue { $0.keys.sorted() } }
    /// The counts of `sourceIDs`, in that order.
    public var allCounts: [SourceCounts] { state.withValue { s in s.keys.sorted().map { s[$0]! } } }

    /// One line per source, for the exit summary, ascending by id. `uri` names a source;
    /// `firstSourceID` numbers a GPU shard's sources as the run's inputs.
    public func summaryLines(firstSourceID: Int = 0, uri: (Int) -> String) -> [String] {
        state.withValue { s in s.sorted { $0.key < $1.key } }.map { id, c in
            var line = "source \(firstSourceID + id) (\(uri(id))): decoded \(c.decoded), delivered \(c.delivered), dropped \(c.droppedTotal)"
            if !c.dropped.isEmpty {
                line += " (" + c.dropped.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")"
            }
            if c.lostInDecoder > 0 { line += ", dropped: decoder (\(c.lostInDecoder))" }
            if c.reconnects > 0 {
                let gap = (Double(c.gapNanoseconds) / 1e8).rounded() / 10
                line += ", reconnected \(c.reconnects) time\(c.reconnects == 1 ? "" : "s") (\(gap) s without frames)"
            }
            return line
        }
    }
}
