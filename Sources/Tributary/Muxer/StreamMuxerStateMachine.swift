import DequeModule

/// What happens to the frames a source has queued when it is removed.
public enum SourceRemovalPolicy: Sendable, Equatable {
    /// Its queued frames still go out in later batches; then the source is gone.
    case drain
    /// Its queued frames are discarded at once and returned in the decision.
    case drop
}

/// The batching decisions of the stream muxer, with nvstreammux's semantics, and nothing else:
/// no locks, no threads, no clock. The driver (`StreamMuxer`) feeds it events with the time they
/// happened and carries out what it returns; tests drive it event by event on a manual clock.
///
/// Rules:
/// - A batch is *full* when it can take one frame from every source still running (not at
///   end-of-stream, or with frames still queued), capped at `batchSize`. A full batch goes at once.
/// - A batch holds at most one frame per source, unless a source is ahead (has several queued)
///   and the batch still has room after one frame from each ready source.
/// - Otherwise the batch waits for at most `pushTimeout` from the arrival of its first frame, then
///   goes partial. `pushTimeout == nil` (batched-push-timeout −1) waits for a full batch.
/// - A source at end-of-stream stops counting towards "full", so it never stalls the others.
/// - A live source with a new frame while its queue is full (`sourceOverflowing`) sends a waiting
///   batch at once: the late frame it waits for would come after that source's next one, so
///   waiting on only costs a dropped frame (real-time streams with jitter, docs/performance.md).
///
/// Sources that come and go:
/// - Sources are keyed by id, and ids only grow: the initial sources are `0..<sourceCount`, an added
///   one must have an id above every id seen so far (a counter in the driver). So an id is never
///   reused within a run (the ledger and frame numbers key on it), checked without remembering
///   every id. Batches list their frames by ascending id; the round-robin start is an id too.
/// - An added source counts towards "full" from then on: a batch already waiting waits for it too,
///   but its deadline still counts from its first frame, so adding never makes a batch wait longer.
/// - A removed source stops counting at once (`.drop`) or once its queue is empty (`.drain`, which
///   is end-of-stream). A batch waiting for its frame stops waiting and may go now. A batch whose
///   first frame was dropped keeps its deadline: removal never makes the others wait longer.
/// - `setBatchSize` changes the cap at once; a waiting batch may become full and go.
///
/// Finishing: the input is *open* while sources may still be added, *closed* after `closeInput`.
/// A machine configured with `acceptsNewSources == false` (today's fixed inputs) is closed from the
/// start. An open machine with no sources waits (no batch, not finished), as DeepStream's service
/// keeps running with zero cameras. Once closed, when no source is running and every queued frame
/// has gone out, the muxer is finished.
public struct StreamMuxerStateMachine<Element> {
    public struct Configuration: Sendable, Equatable {
        /// The sources present at the start, ids `0..<sourceCount`; may be 0 when sources are added later.
        public var sourceCount: Int
        public var batchSize: Int
        /// nil waits forever for a full batch.
        public var pushTimeoutNanoseconds: UInt64?
        /// Whether the input starts open (sources may be added until `closeInput`).
        public var acceptsNewSources: Bool

        public init(sourceCount: Int, batchSize: Int, pushTimeoutMicroseconds: Int, acceptsNewSources: Bool = false) {
            precondition(sourceCount >= 0 && batchSize > 0)
            self.sourceCount = sourceCount
            self.batchSize = batchSize
            self.pushTimeoutNanoseconds = pushTimeoutMicroseconds < 0 ? nil : UInt64(pushTimeoutMicroseconds) * 1000
            self.acceptsNewSources = acceptsNewSources
        }
    }

    /// One batch decided: the frames with their source ids, ordered by source id.
    public struct Batch {
        public var batchID: Int
        public var entries: [(sourceID: Int, element: Element)]
    }

    /// What the driver must do after an event.
    public struct Decision {
        /// Batches to push downstream, in order.
        public var batches: [Batch] = []
        /// When to call `timeoutExpired(at:)` next, if a partial batch is waiting.
        public var deadline: MonotonicInstant?
        /// The input is closed, no source is running and everything queued went out: push end-of-stream.
        public var isFinished = false
        /// Frames discarded by this event (a source removed with `.drop`), oldest first; never batched.
        public var dropped: [Element] = []
    }

    private struct Source {
        let id: Int
        var queue = Deque<Element>()
        /// No more frames will come (end-of-stream, or removed with `.drain`). Forgotten once its
        /// queue is empty, so sources that came and went cost nothing.
        var ended = false
    }

    /// `batchSize` follows `setBatchSize`; `sourceCount` stays the initial count.
    public private(set) var configuration: Configuration
    /// The sources running, ascending by id.
    private var sources: [Source]
    /// The greatest source id seen so far (−1 before any); a new source's id must be greater.
    public private(set) var highestSourceID: Int
    public private(set) var isAcceptingSources: Bool
    /// Arrival of the oldest frame waiting for the next batch.
    private var batchStart: MonotonicInstant?
    private var nextBatchID = 0
    /// Round-robin start, as an id: the next batch starts at the first source with an id at or
    /// above it, so that with batchSize < sources no source is always last, gaps in ids or not.
    private var nextStartID = 0
    private var finished = false

    public init(configuration: Configuration) {
        self.configuration = configuration
        sources = (0..<configuration.sourceCount).map { Source(id: $0) }
        highestSourceID = configuration.sourceCount - 1
        isAcceptingSources = configuration.acceptsNewSources
        // Closed with nothing to wait for: no event would ever finish it.
        finished = !isAcceptingSources && sources.isEmpty
    }

    public func queuedCount(of source: Int) -> Int { index(of: source).map { sources[$0].queue.count } ?? 0 }
    public var totalQueued: Int { sources.reduce(0) { $0 + $1.queue.count } }
    public var isFinished: Bool { finished }
    /// Whether `source` takes no more frames: ended, removed, or never added.
    public func hasEnded(_ source: Int) -> Bool { index(of: source).map { sources[$0].ended } ?? true }
    /// The sources still running (including those draining their queue), ascending.
    public var sourceIDs: [Int] { sources.map(\.id) }

    /// A frame arrived from `source` at `now`.
    public mutating func frameArrived(_ element: Element, from source: Int, at now: MonotonicInstant) -> Decision {
        guard let i = index(of: source), !sources[i].ended else {
            preconditionFailure("frame from source \(source) after its end-of-stream or removal, or never added")
        }
        if batchStart == nil { batchStart = now }
        sources[i].queue.append(element)
        return decide(at: now)
    }

    /// `source` reached end-of-stream (or failed) at `now`. A source already gone changes nothing.
    public mutating func sourceEnded(_ source: Int, at now: MonotonicInstant) -> Decision {
        if let i = index(of: source) { sources[i].ended = true }
        return decide(at: now)
    }

    /// A new source, whose frames will come from now on. The input must be open and `id` above
    /// every id seen so far.
    public mutating func sourceAdded(_ id: Int, at now: MonotonicInstant) -> Decision {
        precondition(isAcceptingSources, "source \(id) added after the input was closed")
        precondition(id > highestSourceID, "source id \(id) not new: ids only grow (highest so far \(highestSourceID))")
        highestSourceID = id
        sources.append(Source(id: id))  // ascending order holds: the id is the greatest
        return decide(at: now)
    }

    /// `source` leaves the run; see `SourceRemovalPolicy`. The decision's `dropped` holds the frames
    /// discarded. A source already gone (removed, or ended and drained) changes nothing.
    public mutating func sourceRemoved(_ source: Int, policy: SourceRemovalPolicy, at now: MonotonicInstant) -> Decision {
        var dropped: [Element] = []
        if let i = index(of: source) {
            switch policy {
            case .drain:
                sources[i].ended = true
            case .drop:
                dropped = Array(sources[i].queue)
                sources.remove(at: i)
            }
        }
        var decision = decide(at: now)
        decision.dropped = dropped
        return decision
    }

    /// The batch size changes (as the app's follows the number of sources).
    public mutating func setBatchSize(_ batchSize: Int, at now: MonotonicInstant) -> Decision {
        precondition(batchSize > 0)
        configuration.batchSize = batchSize
        return decide(at: now)
    }

    /// No more sources will be added: the muxer finishes once the running ones have ended and
    /// their frames went out. Closing twice changes nothing.
    public mutating func closeInput(at now: MonotonicInstant) -> Decision {
        isAcceptingSources = false
        return decide(at: now)
    }

    /// The deadline given by an earlier decision has passed (the driver may call it late or early;
    /// the time is checked again).
    public mutating func timeoutExpired(at now: MonotonicInstant) -> Decision { decide(at: now) }

    /// `source` has a new frame while its queue is full: a live source about to drop its oldest.
    /// A batch still waiting (for its deadline, or for a frame from every source) goes now,
    /// partial, with that source's oldest frame in it: the frame it waits for from a late source
    /// would come after the one this source just made, so waiting longer only costs a drop.
    public mutating func sourceOverflowing(_ source: Int, at now: MonotonicInstant) -> Decision {
        guard let i = index(of: source), !sources[i].queue.isEmpty else { return decide(at: now) }
        // Waiting means fewer ready than a full batch, so this one batch takes every ready source.
        return decide(at: now, sendingWaitingBatch: true)
    }

    /// Removes the oldest queued frame of `source` (a live source whose queue is full drops its
    /// oldest frame rather than blocking the network).
    public mutating func dropOldest(of source: Int) -> Element? {
        guard let i = index(of: source) else { return nil }
        let dropped = sources[i].queue.popFirst()
        if totalQueued == 0 { batchStart = nil }
        return dropped
    }

    /// Binary search: ids are ascending.
    private func index(of id: Int) -> Int? {
        var low = 0, high = sources.count
        while low < high {
            let middle = (low + high) / 2
            if sources[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low < sources.count && sources[low].id == id ? low : nil
    }

    /// `sendingWaitingBatch`: the first batch goes even if not full and before its deadline.
    private mutating func decide(at now: MonotonicInstant, sendingWaitingBatch: Bool = false) -> Decision {
        var decision = Decision()
        var sendNow = sendingWaitingBatch
        while true {
            sources.removeAll { $0.ended && $0.queue.isEmpty }
            // Every source left is running: not ended, or with frames still queued.
            let running = sources.count
            if running == 0 {
                batchStart = nil
                if !isAcceptingSources { finished = true }
                decision.isFinished = finished  // open: wait for the next source
                return decision
            }
            let ready = sources.count(where: { !$0.queue.isEmpty })
            if ready == 0 { batchStart = nil; return decision }
            let full = ready >= min(configuration.batchSize, running)
            var expired = sendNow
            if !full && !sendNow, let timeout = configuration.pushTimeoutNanoseconds, let start = batchStart {
                let deadline = start.advanced(byNanoseconds: timeout)
                if now >= deadline { expired = true } else { decision.deadline = deadline; return decision }
            }
            guard full || expired else { return decision }  // waits forever for a full batch
            sendNow = false
            decision.batches.append(takeBatch())
            // Frames left behind (sources ahead) start the next batch's wait now.
            batchStart = totalQueued > 0 ? now : nil
        }
    }

    private mutating func takeBatch() -> Batch {
        let count = sources.count
        let limit = configuration.batchSize
        let start = sources.firstIndex { $0.id >= nextStartID } ?? 0
        var taken = Array(repeating: 0, count: count)
        var total = 0
        // One frame from each ready source, round-robin from `start`.
        for k in 0..<count where total < limit {
            let i = (start + k) % count
            if !sources[i].queue.isEmpty { taken[i] = 1; total += 1 }
        }
        // Room left: sources that are ahead contribute more frames, still round-robin.
        var progressed = true
        while total < limit && progressed {
            progressed = false
            for k in 0..<count where total < limit {
                let i = (start + k) % count
                if sources[i].queue.count > taken[i] { taken[i] += 1; total += 1; progressed = true }
            }
        }
        nextStartID = sources[start].id + 1
        var entries: [(sourceID: Int, element: Element)] = []
        entries.reserveCapacity(total)
        for i in 0..<count {
            for _ in 0..<taken[i] { entries.append((sources[i].id, sources[i].queue.removeFirst())) }
        }
        defer { nextBatchID += 1 }
        return Batch(batchID: nextBatchID, entries: entries)
    }
}
