import DequeModule

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
/// - When every source has ended and every queued frame has gone out, the muxer is finished.
public struct StreamMuxerStateMachine<Element> {
    public struct Configuration: Sendable, Equatable {
        public var sourceCount: Int
        public var batchSize: Int
        /// nil waits forever for a full batch.
        public var pushTimeoutNanoseconds: UInt64?

        public init(sourceCount: Int, batchSize: Int, pushTimeoutMicroseconds: Int) {
            precondition(sourceCount > 0 && batchSize > 0)
            self.sourceCount = sourceCount
            self.batchSize = batchSize
            self.pushTimeoutNanoseconds = pushTimeoutMicroseconds < 0 ? nil : UInt64(pushTimeoutMicroseconds) * 1000
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
        /// Every source ended and everything queued went out: push end-of-stream.
        public var isFinished = false
    }

    public let configuration: Configuration
    private var queues: [Deque<Element>]
    private var ended: [Bool]
    /// Arrival of the oldest frame waiting for the next batch.
    private var batchStart: MonotonicInstant?
    private var nextBatchID = 0
    /// Round-robin start, so that with batchSize < sources no source is always last.
    private var nextSource = 0
    private var finished = false

    public init(configuration: Configuration) {
        self.configuration = configuration
        queues = Array(repeating: Deque(), count: configuration.sourceCount)
        ended = Array(repeating: false, count: configuration.sourceCount)
    }

    public func queuedCount(of source: Int) -> Int { queues[source].count }
    public var totalQueued: Int { queues.reduce(0) { $0 + $1.count } }
    public var isFinished: Bool { finished }
    public func hasEnded(_ source: Int) -> Bool { ended[source] }

    /// A frame arrived from `source` at `now`.
    public mutating func frameArrived(_ element: Element, from source: Int, at now: MonotonicInstant) -> Decision {
        precondition(!ended[source], "frame after end-of-stream from source \(source)")
        if batchStart == nil { batchStart = now }
        queues[source].append(element)
        return decide(at: now)
    }

    /// `source` reached end-of-stream (or failed) at `now`.
    public mutating func sourceEnded(_ source: Int, at now: MonotonicInstant) -> Decision {
        ended[source] = true
        return decide(at: now)
    }

    /// The deadline given by an earlier decision has passed (the driver may call it late or early;
    /// the time is checked again).
    public mutating func timeoutExpired(at now: MonotonicInstant) -> Decision { decide(at: now) }

    /// Removes the oldest queued frame of `source` (a live source whose queue is full drops its
    /// oldest frame rather than blocking the network).
    public mutating func dropOldest(of source: Int) -> Element? {
        let dropped = queues[source].popFirst()
        if totalQueued == 0 { batchStart = nil }
        return dropped
    }

    private var runningSources: Int {
        var count = 0
        for i in 0..<configuration.sourceCount where !ended[i] || !queues[i].isEmpty { count += 1 }
        return count
    }

    private var readySources: Int { queues.reduce(0) { $0 + ($1.isEmpty ? 0 : 1) } }

    private mutating func decide(at now: MonotonicInstant) -> Decision {
        var decision = Decision()
        while true {
            let running = runningSources
            if running == 0 {
                if !finished { finished = true }
                decision.isFinished = true
                batchStart = nil
                return decision
            }
            let ready = readySources
            if ready == 0 { batchStart = nil; return decision }
            let full = ready >= min(configuration.batchSize, running)
            var expired = false
            if !full, let timeout = configuration.pushTimeoutNanoseconds, let start = batchStart {
                let deadline = start.advanced(byNanoseconds: timeout)
                if now >= deadline { expired = true } else { decision.deadline = deadline; return decision }
            }
            guard full || expired else { return decision }  // waits forever for a full batch
            decision.batches.append(takeBatch())
            // Frames left behind (sources ahead) start the next batch's wait now.
            batchStart = totalQueued > 0 ? now : nil
        }
    }

    private mutating func takeBatch() -> Batch {
        let count = configuration.sourceCount
        let limit = configuration.batchSize
        var taken = Array(repeating: 0, count: count)
        var total = 0
        // One frame from each ready source, round-robin from `nextSource`.
        for k in 0..<count where total < limit {
            let s = (nextSource + k) % count
            if !queues[s].isEmpty { taken[s] = 1; total += 1 }
        }
        // Room left: sources that are ahead contribute more frames, still round-robin.
        var progressed = true
        while total < limit && progressed {
            progressed = false
            for k in 0..<count where total < limit {
                let s = (nextSource + k) % count
                if queues[s].count > taken[s] { taken[s] += 1; total += 1; progressed = true }
            }
        }
        nextSource = (nextSource + 1) % count
        var entries: [(sourceID: Int, element: Element)] = []
        entries.reserveCapacity(total)
        for s in 0..<count {
            for _ in 0..<taken[s] { entries.append((s, queues[s].removeFirst())) }
        }
        defer { nextBatchID += 1 }
        return Batch(batchID: nextBatchID, entries: entries)
    }
}
