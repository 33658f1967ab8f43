import Testing
@testable import Tributary
#if canImport(Glibc)
import Glibc
#endif

struct ReorderBufferTests {
    /// Three workers finish their items in scrambled order; the consumer still gets 0, 1, 2, …,
    /// every item once, then nil; no worker gets further ahead of the consumer than the window.
    @Test func handsResultsBackInSequenceWithinTheWindow() {
        let count = 60, window = 3
        let buffer = ReorderBuffer<Int>(window: window, producers: 3)
        let next = Locked(0)
        let consumed = Locked(0)
        let aheadTooFar = Locked(0)
        let workers = (0..<3).map { worker in
            WorkerThread(name: "reorder-test-\(worker)") {
                defer { buffer.producerFinished() }
                while let sequence = next.withValue({ n -> Int? in
                    guard n < count else { return nil }
                    defer { n += 1 }
                    return n
                }) {
                    usleep(UInt32((sequence * 7919 + worker * 104_729) % 5) * 300)  // uneven work
                    buffer.put(sequence * 10, sequence: sequence)
                    // The consumer's count may lag its buffer position by the one item in hand.
                    if sequence >= consumed.withValue({ $0 }) + window + 1 { aheadTooFar.withValue { $0 += 1 } }
                }
            }
        }
        var received: [Int] = []
        while let value = buffer.next() {
            received.append(value)
            consumed.withValue { $0 += 1 }
        }
        for worker in workers { worker.join() }
        #expect(received == (0..<count).map { $0 * 10 })
        #expect(aheadTooFar.withValue { $0 } == 0)
        #expect(buffer.next() == nil)
    }
}
