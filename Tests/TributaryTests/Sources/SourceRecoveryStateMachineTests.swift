import Testing
@testable import Tributary

/// Per-camera recovery, event by event on a manual clock: no threads, no sleeps, no randomness
/// (each loss passes its jitter sample; 0.5 is no jitter).
@Suite struct SourceRecoveryStateMachineTests {
    typealias Machine = SourceRecoveryStateMachine
    let clock = ManualClock()
    let second: UInt64 = 1_000_000

    func liveMachine(interval: Double = 10, attempts: Int = -1) -> Machine {
        Machine(policy: SourceRecoveryPolicy(reconnectIntervalSeconds: interval, attempts: attempts), isLive: true, startedAt: clock.now())
    }

    @Test func aLiveSourceWithoutFramesForTheIntervalStallsThenBacksOffAndIsRebuilt() {
        var action = Machine.Action.none
        var changed = false
        var m = liveMachine(interval: 10)
        #expect(m.state == .connecting)
        changed = m.frameArrived(at: clock.now())
        #expect(changed)
        #expect(m.state == .streaming)
        clock.advance(byMicroseconds: 9 * second)
        changed = m.frameArrived(at: clock.now())
        #expect(changed == false, "already streaming: no change")
        clock.advance(byMicroseconds: 10 * second - 1)
        action = m.tick(at: clock.now())
        #expect(action == .none, "1 µs short of the interval since the latest frame")
        clock.advance(byMicroseconds: 1)
        action = m.tick(at: clock.now())
        #expect(action == .tearDown)
        #expect(m.state == .stalled)
        action = m.tick(at: clock.now())
        #expect(action == .none, "a stalled source is torn down once")
        action = m.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(action == .none)
        #expect(m.state == .backingOff)
        #expect(m.attempt == 1)
        #expect(m.lastError == "no frame for 10.0 s", "the stall is the reason, not the end-of-stream it caused")
        clock.advance(byMicroseconds: second - 1)
        action = m.tick(at: clock.now())
        #expect(action == .none, "the first retry waits 1 s")
        clock.advance(byMicroseconds: 1)
        action = m.tick(at: clock.now())
        #expect(action == .rebuild)
        #expect(m.state == .connecting)
        #expect(m.reconnects == 0, "rebuilt, not yet reconnected")
        changed = m.frameArrived(at: clock.now())
        #expect(changed)
        #expect(m.state == .streaming)
        #expect(m.reconnects == 1)
        #expect(m.lastOutageNanoseconds == 11_000_000_000, "the gap: from the last frame before the loss (9 s in) to the first after (20 s in)")
        #expect(m.attempt == 0, "the attempts count again from the next loss")
    }

    @Test func retriesBackOffExponentiallyUpToTheCap() {
        let m = liveMachine()
        let delays = (1...8).map { m.backoffNanoseconds(attempt: $0, jitterSample: 0.5) / 1_000_000_000 }
        #expect(delays == [1, 2, 4, 8, 16, 30, 30, 30])
        #expect(m.backoffNanoseconds(attempt: 1, jitterSample: 0) == 800_000_000, "−20 % at the low end of the jitter")
        #expect(m.backoffNanoseconds(attempt: 1, jitterSample: 1) == 1_200_000_000, "+20 % at the high end")
    }

    @Test func aCameraDownAtStartIsRetriedAndEachFailedRebuildWaitsLonger() {
        var action = Machine.Action.none
        var changed = false
        var m = liveMachine(interval: 10)
        var expectedDelay: UInt64 = 1
        for attempt in 1...4 {
            // Connection refused: the run fails at once.
            action = m.sourceEnded(.failed(element: "rtspsrc", message: "Could not open resource"), at: clock.now(), jitterSample: 0.5)
            #expect(action == .none)
            #expect(m.state == .backingOff)
            #expect(m.attempt == attempt)
            #expect(m.lastError == "rtspsrc: Could not open resource")
            clock.advance(byMicroseconds: expectedDelay * second - 1)
            action = m.tick(at: clock.now())
            #expect(action == .none)
            clock.advance(byMicroseconds: 1)
            action = m.tick(at: clock.now())
            #expect(action == .rebuild)
            expectedDelay *= 2
        }
        changed = m.frameArrived(at: clock.now())
        #expect(changed)
        #expect(m.reconnects == 1)
    }

    @Test func aRebuildThatNeverDeliversStallsToo() {
        var action = Machine.Action.none
        var m = liveMachine(interval: 2)
        _ = m.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(m.lastError == "the stream ended", "a live source never ends normally")
        #expect(m.state == .backingOff)
        clock.advance(byMicroseconds: second)
        action = m.tick(at: clock.now())
        #expect(action == .rebuild)
        clock.advance(byMicroseconds: 2 * second)
        action = m.tick(at: clock.now())
        #expect(action == .none, "a (re)built source gets the connect timeout (10 s) for its first frame, not just the interval")
        clock.advance(byMicroseconds: 8 * second)
        action = m.tick(at: clock.now())
        #expect(action == .tearDown, "connecting for 10 s without a frame (a frozen server)")
        action = m.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(action == .none)
        #expect(m.attempt == 2)
        #expect(m.retryAt == clock.now().advanced(byNanoseconds: 2_000_000_000))
    }

    @Test func outOfAttemptsTheSourceFails() {
        var action = Machine.Action.none
        var m = liveMachine(interval: 1, attempts: 2)
        for _ in 1...2 {
            action = m.sourceEnded(.failed(element: "rtspsrc", message: "refused"), at: clock.now(), jitterSample: 0.5)
            #expect(action == .none)
            clock.advance(byMicroseconds: 60 * second)
            action = m.tick(at: clock.now())
            #expect(action == .rebuild)
        }
        action = m.sourceEnded(.failed(element: "rtspsrc", message: "refused"), at: clock.now(), jitterSample: 0.5)
        #expect(action == .finish)
        #expect(m.state == .failed)
        #expect(m.lastError == "rtspsrc: refused; gave up after 2 attempts")
        action = m.tick(at: clock.now())
        #expect(action == .none)
    }

    @Test func filesAndLiveSourcesWithoutRecoveryEndWhenTheirRunEnds() {
        var action = Machine.Action.none
        var file = Machine(policy: .default, isLive: false, startedAt: clock.now())
        _ = file.frameArrived(at: clock.now())
        clock.advance(byMicroseconds: 3600 * second)
        action = file.tick(at: clock.now())
        #expect(action == .none, "a paused file pipeline is never a stall")
        action = file.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(action == .finish)
        #expect(file.state == .ended)

        var broken = Machine(policy: .default, isLive: false, startedAt: clock.now())
        action = broken.sourceEnded(.failed(element: "decodebin", message: "no decoder"), at: clock.now(), jitterSample: 0.5)
        #expect(action == .finish)
        #expect(broken.state == .failed, "an undecodable file is not retried")
        #expect(broken.lastError == "decodebin: no decoder")

        var live = Machine(policy: .disabled, isLive: true, startedAt: clock.now())
        clock.advance(byMicroseconds: 3600 * second)
        action = live.tick(at: clock.now())
        #expect(action == .none)
        action = live.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(action == .finish)
        #expect(live.state == .ended, "interval 0: DeepStream's no-reconnect")
    }

    @Test func eachSourceKeepsItsOwnScheduleSoManyRecoverTogether() {
        // 32 cameras lost at the same instant: each due after its own 1 s ± 20 %, none after another.
        var machines = (0..<32).map { _ in liveMachine(interval: 10) }
        for index in machines.indices {
            _ = machines[index].sourceEnded(.endOfStream, at: clock.now(), jitterSample: Double(index) / 32)
        }
        clock.advance(byMicroseconds: 1_200_000)
        var rebuilt = 0
        for index in machines.indices where machines[index].tick(at: clock.now()) == .rebuild { rebuilt += 1 }
        #expect(rebuilt == 32, "all 32 retried within 1.2 s: no global throttle")
    }
}
