import DequeModule

/// Configuration of the stream muxer, as nvstreammux's properties.
public struct StreamMuxerConfiguration: Sendable, Equatable {
    public var batchSize: Int
    public var width: Int
    public var height: Int
    /// batched-push-timeout in microseconds; −1 waits for a full batch.
    public var batchedPushTimeoutMicroseconds: Int
    /// Frames a source may have queued before it blocks (file) or, live, sends the batch still
    /// waiting for a late source, else drops its oldest. One by
    /// default: each is 8.3 MB at 1080p RGBA, and a second bought no throughput (docs/performance.md).
    public var queueCapacityPerSource: Int
    /// Batches formed but not yet taken downstream. Beyond it file sources wait and a live
    /// muxer drops its oldest batch: memory stays flat when the consumer is slower than decoding.
    public var maxPendingBatches: Int = 1
    /// Whether sources may be added while it runs (`addSource`) until `closeInput`. Off, the muxer
    /// finishes when its initial sources have ended; on, it waits even with no source at all.
    public var acceptsNewSources: Bool

    public init(batchSize: Int, width: Int = 1920, height: Int = 1080, batchedPushTimeoutMicroseconds: Int = 33_000,
                queueCapacityPerSource: Int = 1, acceptsNewSources: Bool = false) {
        self.batchSize = batchSize
        self.width = width
        self.height = height
        self.batchedPushTimeoutMicroseconds = batchedPushTimeoutMicroseconds
        self.queueCapacityPerSource = queueCapacityPerSource
        self.acceptsNewSources = acceptsNewSources
    }
}

/// Why `StreamMuxer.addSource` refused a source.
public enum StreamMuxerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The muxer takes no new sources: configured without `acceptsNewSources`, closed, or aborted.
    case inputClosed(sourceID: Int)
    /// Source ids only grow within a run, so that none is reused (the ledger and frame numbers key on it).
    case sourceIDNotNew(Int, highestSoFar: Int)

    public var description: String {
        switch self {
        case .inputClosed(let id): return "cannot add source \(id): the muxer takes no new sources"
        case .sourceIDNotNew(let id, let highest): return "cannot add source \(id): ids only grow, and \(highest) was already used"
        }
    }
}

/// The muxer's driver: owns the lock and the waits around `StreamMuxerStateMachine`. Source threads
/// call `push` and `sourceEnded`; one consumer thread calls `nextBatch` until it returns nil. Any
/// thread may add and remove sources, change the batch size or close the input while batches flow.
public final class StreamMuxer: @unchecked Sendable {
    /// As constructed; `batchSize` reads the current batch size.
    public let configuration: StreamMuxerConfiguration
    private let lock = ConditionLock()
    private var machine: StreamMuxerStateMachine<Frame>
    /// Batches formed and not yet taken, oldest first.
    private var ready = Deque<FrameBatch>()
    private var deadline: MonotonicInstant?
    private var finished = false
    private var stopping = false
    private let clock: TimeSource
    private let ledger: FrameLedger

    public init(configuration: StreamMuxerConfiguration, sourceCount: Int, clock: TimeSource = MonotonicClock(), ledger: FrameLedger) {
        self.configuration = configuration
        self.clock = clock
        self.ledger = ledger
        machine = StreamMuxerStateMachine(configuration: .init(
            sourceCount: sourceCount, batchSize: configuration.batchSize,
            pushTimeoutMicroseconds: configuration.batchedPushTimeoutMicroseconds,
            acceptsNewSources: configuration.acceptsNewSources))
        finished = machine.isFinished  // closed and no sources: nothing will ever come
    }

    public var batchSize: Int { lock.withLock { machine.configuration.batchSize } }
    /// The sources running (including those draining), ascending.
    public var sourceIDs: [Int] { lock.withLock { machine.sourceIDs } }

    private var pendingBatches: Int { ready.count }

    /// Queues a frame. A file source blocks while its queue or the pending batches are full
    /// (back-pressure reaches the decoder); a live source drops its oldest queued frame instead,
    /// and a live muxer its oldest pending batch, counted in the ledger.
    public func push(_ frame: Frame, live: Bool) {
        lock.withLock {
            // A source removed while its producer waits here stops waiting and drops the frame below.
            while !stopping && !machine.hasEnded(frame.sourceID)
                    && (machine.queuedCount(of: frame.sourceID) >= configuration.queueCapacityPerSource
                                || pendingBatches >= configuration.maxPendingBatches) {
                if live {
                    if machine.queuedCount(of: frame.sourceID) >= configuration.queueCapacityPerSource {
                        // A batch still waiting for a late source goes now rather than this
                        // source losing a frame; not when the consumer is behind (it would only
                        // push an older batch out).
                        if pendingBatches < configuration.maxPendingBatches {
                            apply(machine.sourceOverflowing(frame.sourceID, at: clock.now()))
                        }
                        if machine.queuedCount(of: frame.sourceID) >= configuration.queueCapacityPerSource,
                           machine.dropOldest(of: frame.sourceID) != nil {
                            ledger.recordDropped(source: frame.sourceID, reason: .liveQueueFull)
                        }
                    }
                    break  // a full backlog is trimmed after the decision below
                } else {
                    lock.wait()
                }
            }
            if stopping || machine.hasEnded(frame.sourceID) {
                // A frame after its source's end can only follow a removal (end-of-stream is the
                // producer's own last word).
                ledger.recordDropped(source: frame.sourceID, reason: stopping ? .shutdown : .sourceRemoved)
                return
            }
            apply(machine.frameArrived(frame, from: frame.sourceID, at: clock.now()))
            if live {
                while pendingBatches > configuration.maxPendingBatches, let oldest = ready.popFirst() {
                    for dropped in oldest.frames { ledger.recordDropped(source: dropped.sourceID, reason: .liveQueueFull) }
                }
            }
        }
    }

    /// The source will send no more frames.
    public func sourceEnded(_ sourceID: Int) {
        lock.withLock {
            guard !machine.hasEnded(sourceID) else { return }
            apply(machine.sourceEnded(sourceID, at: clock.now()))
        }
    }

    /// A new source joins; a batch already waiting waits for its frame too (within its timeout).
    /// Its id must be above every id used so far (a counter), and its frames numbered from 0
    /// (a new `VideoSource` does that).
    public func addSource(id: Int) throws {
        try lock.withLock {
            guard !stopping && machine.isAcceptingSources else { throw StreamMuxerError.inputClosed(sourceID: id) }
            guard id > machine.highestSourceID else {
                throw StreamMuxerError.sourceIDNotNew(id, highestSoFar: machine.highestSourceID)
            }
            apply(machine.sourceAdded(id, at: clock.now()))
        }
    }

    /// The source leaves: `.drain` lets its queued frames go out, `.drop` discards them, counted in
    /// the ledger as `reason`. Its later pushes are dropped as after end-of-stream. Returns the
    /// number of frames dropped; removing a source already gone does nothing.
    @discardableResult
    public func removeSource(id: Int, policy: SourceRemovalPolicy, droppedAs reason: DropReason = .sourceRemoved) -> Int {
        lock.withLock {
            let decision = machine.sourceRemoved(id, policy: policy, at: clock.now())
            if !decision.dropped.isEmpty { ledger.recordDropped(source: id, reason: reason, count: decision.dropped.count) }
            apply(decision)  // its broadcast wakes this source's producer if it waits in `push`
            return decision.dropped.count
        }
    }

    /// A waiting batch may become full at the new size and go at once.
    public func setBatchSize(_ batchSize: Int) {
        lock.withLock { apply(machine.setBatchSize(batchSize, at: clock.now())) }
    }

    /// No more sources will be added: `nextBatch` returns nil once the running ones have ended and
    /// their batches were taken.
    public func closeInput() {
        lock.withLock { apply(machine.closeInput(at: clock.now())) }
    }

    /// Unblocks every waiting producer, drops what is queued; `nextBatch` then returns the batches
    /// already formed and nil.
    public func abort() {
        lock.withLock {
            stopping = true
            let now = clock.now()
            for id in machine.sourceIDs {
                let decision = machine.sourceRemoved(id, policy: .drop, at: now)
                if !decision.dropped.isEmpty { ledger.recordDropped(source: id, reason: .shutdown, count: decision.dropped.count) }
                apply(decision)
            }
            apply(machine.closeInput(at: now))  // an open muxer with no sources left finishes too
        }
    }

    /// The next batch, waiting as long as the batching rules say; nil after the last one.
    public func nextBatch() -> FrameBatch? {
        lock.withLock {
            while true {
                if let batch = ready.popFirst() {
                    for frame in batch.frames { ledger.recordDelivered(source: frame.sourceID) }
                    lock.broadcast()  // queues shrank: wake blocked producers
                    return batch
                }
                if finished { return nil }
                if let deadline {
                    let now = clock.now()
                    if now >= deadline {
                        self.deadline = nil
                        apply(machine.timeoutExpired(at: now))
                        continue
                    }
                    lock.wait(until: deadline)
                } else {
                    lock.wait()
                }
            }
        }
    }

    /// Carries out a decision; called with the lock held.
    private func apply(_ decision: StreamMuxerStateMachine<Frame>.Decision) {
        for batch in decision.batches {
            var frames: [Frame] = []
            frames.reserveCapacity(batch.entries.count)
            for entry in batch.entries { frames.append(entry.element) }
            ready.append(FrameBatch(batchID: batch.batchID, frames: frames))
        }
        deadline = decision.deadline
        if decision.isFinished { finished = true }
        lock.broadcast()
    }
}
