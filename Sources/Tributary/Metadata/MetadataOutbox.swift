import DequeModule

/// What a network metadata sink holds that is not yet at its broker, and where each message goes:
/// the decisions only (no I/O, no threads, no clock), tested event by event; the sink's publisher
/// thread carries them out (`BrokerSink`).
///
/// - Published messages wait in memory (at most `memoryCapacity`; beyond it the oldest are dropped
///   and counted: the pipeline never waits on a broker).
/// - While the broker is reachable, the spool (messages written to disk during an outage) goes
///   first, in order, then memory: order is kept across an outage.
/// - While it is not, memory moves to the spool as it comes; a spool over its cap loses its
///   oldest segment (counted).
/// - A batch that failed in flight is spooled again whole: at-least-once, the duplicates no more
///   than that batch, each with its message id.
public struct MetadataOutbox<Message> {
    public enum Step: Equatable {
        /// Send these many of the spool's oldest messages (replay).
        case replay
        /// Send the next `count` from memory.
        case send(count: Int)
        /// Write the next `count` from memory to the spool.
        case spool(count: Int)
        case idle
    }

    public typealias Counts = MetadataSinkCounts

    public let memoryCapacity: Int
    public let batchLimit: Int
    public private(set) var memory = Deque<Message>()
    public private(set) var connected = false
    /// Messages on disk, not yet replayed.
    public private(set) var spoolBacklog = 0
    public private(set) var counts = Counts()

    public init(memoryCapacity: Int, batchLimit: Int) {
        precondition(memoryCapacity > 0 && batchLimit > 0)
        self.memoryCapacity = memoryCapacity
        self.batchLimit = batchLimit
    }

    /// The pipeline published; returns how many old messages were dropped to make room.
    public mutating func published(_ messages: [Message]) -> Int {
        counts.published += messages.count
        memory.append(contentsOf: messages)
        let over = max(0, memory.count - memoryCapacity)
        if over > 0 {
            memory.removeFirst(over)
            counts.dropped += over
        }
        return over
    }

    /// What the publisher does next.
    public func nextStep() -> Step {
        if connected {
            if spoolBacklog > 0 { return .replay }
            return memory.isEmpty ? .idle : .send(count: min(batchLimit, memory.count))
        }
        return memory.isEmpty ? .idle : .spool(count: min(batchLimit, memory.count))
    }

    /// The first `count` messages in memory, taken out (to send or to spool).
    public mutating func take(_ count: Int) -> [Message] {
        let taken = Array(memory.prefix(count))
        memory.removeFirst(taken.count)
        return taken
    }

    public mutating func connectionChanged(_ up: Bool) { connected = up }

    /// Sent from memory and acknowledged.
    public mutating func sent(_ count: Int) { counts.sent += count }
    /// Written to the spool (from memory, or a batch that failed in flight).
    public mutating func spooled(_ count: Int) {
        spoolBacklog += count
        counts.spooled += count
    }
    /// Replayed from the spool and acknowledged (`fenced` of them refused by their fence).
    public mutating func replayed(_ count: Int, fenced: Int = 0) {
        spoolBacklog = max(0, spoolBacklog - count - fenced)
        counts.replayed += count
        counts.fenced += fenced
    }
    /// Refused by their fence: the camera's lease had moved on (worker mode).
    public mutating func fenced(_ count: Int) { counts.fenced += count }
    /// Refused before they were queued: the camera has no lease here (worker mode).
    public mutating func refused(_ count: Int) {
        counts.published += count
        counts.fenced += count
    }
    /// The spool lost its oldest messages (over its cap).
    public mutating func spoolDropped(_ count: Int) {
        spoolBacklog = max(0, spoolBacklog - count)
        counts.dropped += count
    }
}
