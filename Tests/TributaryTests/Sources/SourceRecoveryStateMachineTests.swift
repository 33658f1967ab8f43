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
        var m = liveMachine(interval: 10)
        #expect(m.state == .connecting)
        let result17 = m.frameArrived(at: clock.now())
        #expect(result17)
        #expect(m.state == .streaming)
        clock.advance(byMicroseconds: 9 * second)
        let result21 = m.frameArrived(at: clock.now())
        #expect(result21 == false, "already streaming: no change")
        clock.advance(byMicroseconds: 10 * second - 1)
        let result24 = m.tick(at: clock.now())
        #expect(result24 == .none, "1 µs short of the interval since the latest frame")
        clock.advance(byMicroseconds: 1)
        let result27 = m.tick(at: clock.now())
        #expect(result27 == .tearDown)
        #expect(m.state == .stalled)
        let result30 = m.tick(at: clock.now())
        #expect(result30 == .none, "a stalled source is torn down once")
        let result32 = m.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(result32 == .none)
        #expect(m.state == .backingOff)
        #expect(m.attempt == 1)
        #expect(m.lastError == "no frame for 10.0 s", "the stall is the reason, not the end-of-stream it caused")
        clock.advance(byMicroseconds: second - 1)
        let result38 = m.tick(at: clock.now())
        #expect(result38 == .none, "the first retry waits 1 s")
        clock.advance(byMicroseconds: 1)
        let result41 = m.tick(at: clock.now())
        #expect(result41 == .rebuild)
        #expect(m.state == .connecting)
        #expect(m.reconnects == 0, "rebuilt, not yet reconnected")
        let result45 = m.frameArrived(at: clock.now())
        #expect(result45)
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
        var m = liveMachine(interval: 10)
        var expectedDelay: UInt64 = 1
        for attempt in 1...4 {
            // Connection refused: the run fails at once.
            let result65 = m.sourceEnded(.failed(element: "rtspsrc", message: "Could not open resource"), at: clock.now(), jitterSample: 0.5)
            #expect(result65 == .none)
            #expect(m.state == .backingOff)
            #expect(m.attempt == attempt)
            #expect(m.lastError == "rtspsrc: Could not open resource")
            clock.advance(byMicroseconds: expectedDelay * second - 1)
            let result71 = m.tick(at: clock.now())
            #expect(result71 == .none)
            clock.advance(byMicroseconds: 1)
            let result74 = m.tick(at: clock.now())
            #expect(result74 == .rebuild)
            expectedDelay *= 2
        }
        let result78 = m.frameArrived(at: clock.now())
        #expect(result78)
        #expect(m.reconnects == 1)
    }

    @Test func aRebuildThatNeverDeliversStallsToo() {
        var m = liveMachine(interval: 2)
        _ = m.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(m.lastError == "the stream ended", "a live source never ends normally")
        #expect(m.state == .backingOff)
        clock.advance(byMicroseconds: second)
        let result88 = m.tick(at: clock.now())
        #expect(result88 == .rebuild)
        clock.advance(byMicroseconds: 2 * second)
        let result90 = m.tick(at: clock.now())
        #expect(result90 == .none, "a (re)built source gets the connect timeout (10 s) for its first frame, not just the interval")
        clock.advance(byMicroseconds: 8 * second)
        let result91 = m.tick(at: clock.now())
        #expect(result91 == .tearDown, "connecting for 10 s without a frame (a frozen server)")
        let result93 = m.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(result93 == .none)
        #expect(m.attempt == 2)
        #expect(m.retryAt == clock.now().advanced(byNanoseconds: 2_000_000_000))
    }

    @Test func outOfAttemptsTheSourceFails() {
        var m = liveMachine(interval: 1, attempts: 2)
        for _ in 1...2 {
            let result102 = m.sourceEnded(.failed(element: "rtspsrc", message: "refused"), at: clock.now(), jitterSample: 0.5)
            #expect(result102 == .none)
            clock.advance(byMicroseconds: 60 * second)
            let result105 = m.tick(at: clock.now())
            #expect(result105 == .rebuild)
        }
        let result108 = m.sourceEnded(.failed(element: "rtspsrc", message: "refused"), at: clock.now(), jitterSample: 0.5)
        #expect(result108 == .finish)
        #expect(m.state == .failed)
        #expect(m.lastError == "rtspsrc: refused; gave up after 2 attempts")
        let result112 = m.tick(at: clock.now())
        #expect(result112 == .none)
    }

    @Test func filesAndLiveSourcesWithoutRecoveryEndWhenTheirRunEnds() {
        var file = Machine(policy: .default, isLive: false, startedAt: clock.now())
        _ = file.frameArrived(at: clock.now())
        clock.advance(byMicroseconds: 3600 * second)
        let result120 = file.tick(at: clock.now())
        #expect(result120 == .none, "a paused file pipeline is never a stall")
        let result122 = file.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(result122 == .finish)
        #expect(file.state == .ended)

        var broken = Machine(policy: .default, isLive: false, startedAt: clock.now())
        let result127 = broken.sourceEnded(.failed(element: "decodebin", message: "no decoder"), at: clock.now(), jitterSample: 0.5)
        #expect(result127 == .finish)
        #expect(broken.state == .failed, "an undecodable file is not retried")
        #expect(broken.lastError == "decodebin: no decoder")

        var live = Machine(policy: .disabled, isLive: true, startedAt: clock.now())
        clock.advance(byMicroseconds: 3600 * second)
        let result134 = live.tick(at: clock.now())
        #expect(result134 == .none)
        let result136 = live.sourceEnded(.endOfStream, at: clock.now(), jitterSample: 0.5)
        #expect(result136 == .finish)
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
