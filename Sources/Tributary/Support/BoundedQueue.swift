import DequeModule

/// A blocking FIFO of fixed capacity between two stages: `push` waits while it is full (the
/// producer slows to the consumer's pace, memory stays flat), `pop` waits while it is empty and
/// returns nil once the queue is closed and drained.
public final class BoundedQueue<Element>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var items = Deque<Element>()
    private var closed = false
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public func push(_ element: Element) {
        lock.withLock {
            while items.count >= capacity && !closed { lock.wait() }
            items.append(element)
            lock.broadcast()
        }
    }

    public func pop() -> Element? {
        lock.withLock {
            while items.isEmpty && !closed { lock.wait() }
            guard !items.isEmpty else { return nil }
            let element = items.removeFirst()
            lock.broadcast()
            return element
        }
    }

    /// No more pushes; `pop` drains what is left, then returns nil.
    public func close() {
        lock.withLock {
            closed = true
            lock.broadcast()
        }
    }
}
