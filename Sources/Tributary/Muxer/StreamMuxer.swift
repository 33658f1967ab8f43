import DequeModule

/// Configuration of the stream muxer, as nvstreammux's properties.
public struct StreamMuxerConfiguration: Sendable, Equatable {
    public var batchSize: Int
    public var width: Int
    public var height: Int
    /// batched-push-timeout in microseconds; −1 waits for a full batch.
    public var batchedPushTimeoutMicroseconds: Int
    /// Frames a source may have queued before it blocks (file) or drops its oldest (live). One by
    /// default: each is 8.3 MB at 1080p RGBA, and a second bought no throughput (docs/performance.md).
    public var queueCapacityPerSource: Int
    /// Batches formed but not yet taken downstream. Beyond it file sources wait and a live
    /// muxer drops its oldest batch: memory stays flat when the consumer is slower than decoding.
    public var maxPendingBatches: Int = 1

    public init(batchSize: Int, width: Int = 1920, height: Int = 1080, batchedPushTimeoutMicroseconds: Int = 33_000,
                queueCapacityPerSource: Int = 1) {
        self.batchSize = batchSize
        self.width = width
        self.height = height
        self.batchedPushTimeoutMicroseconds = batchedPushTimeoutMicroseconds
        self.queueCapacityPerSource = queueCapacityPerSource
    }
}

/// The muxer's driver: owns the lock and the waits around `StreamMuxerStateMachine`. Source threads
/// call `push` and `sourceEnded`; one consumer thread calls `nextBatch` until it returns nil.
public final class StreamMuxer: @unchecked Sendable {
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
            pushTimeoutMicroseconds: configuration.batchedPushTimeoutMicroseconds))
    }

    private var pendingBatches: Int { ready.count }

    /// Queues a frame. A file source blocks while its queue or the pending batches are full
    /// (back-pressure reaches the decoder); a live source drops its oldest queued frame instead,
    /// and a live muxer its oldest pending batch, counted in the ledger.
    public func push(_ frame: Frame, live: Bool) {
        lock.withLock {
            while !stopping && (machine.queuedCount(of: frame.sourceID) >= configuration.queueCapacityPerSource
                                || pendingBatches >= configuration.maxPendingBatches) {
                if live {
                    if machine.queuedCount(of: frame.sourceID) >= configuration.queueCapacityPerSource,
                       machine.dropOldest(of: frame.sourceID) != nil {
                        ledger.recordDropped(source: frame.sourceID, reason: .liveQueueFull)
                    }
                    break  // a full backlog is trimmed after the decision below
                } else {
                    lock.wait()
                }
            }
            if stopping || machine.hasEnded(frame.sourceID) {
                ledger.recordDropped(source: frame.sourceID, reason: .shutdown)
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

    /// Unblocks every waiting producer, drops what is queued; `nextBatch` then returns the batches
    /// already formed and nil.
    public func abort() {
        lock.withLock {
            stopping = true
            for s in 0..<machine.configuration.sourceCount {
                while machine.dropOldest(of: s) != nil { ledger.recordDropped(source: s, reason: .shutdown) }
                if !machine.hasEnded(s) { apply(machine.sourceEnded(s, at: clock.now())) }
            }
            lock.broadcast()
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
