/// Hands results made out of order (by several workers) back in sequence order: workers `put`
/// the result of sequence number n; one consumer `next()` gets 0, 1, 2, … . A worker ahead of the
/// consumer by `window` or more waits, so memory stays bounded.
public final class ReorderBuffer<Element>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var waiting: [Int: Element] = [:]
    private var nextSequence = 0
    private var producersLeft: Int
    public let window: Int

    /// - Parameter producers: how many workers put; when all have said `producerFinished`, `next`
    ///   returns nil after the last result in sequence.
    public init(window: Int, producers: Int) {
        precondition(window > 0 && producers > 0)
        self.window = window
        producersLeft = producers
    }

    public func put(_ element: Element, sequence: Int) {
        lock.withLock {
            while sequence >= nextSequence + window { lock.wait() }
            waiting[sequence] = element
            lock.broadcast()
        }
    }

    public func producerFinished() {
        lock.withLock {
            producersLeft -= 1
            lock.broadcast()
        }
    }

    /// The next result in sequence; nil once every producer has finished and none is left.
    public func next() -> Element? {
        lock.withLock {
            while waiting[nextSequence] == nil {
                if producersLeft == 0 { return nil }
                lock.wait()
            }
            let element = waiting.removeValue(forKey: nextSequence)
            nextSequence += 1
            lock.broadcast()
            return element
        }
    }
}
