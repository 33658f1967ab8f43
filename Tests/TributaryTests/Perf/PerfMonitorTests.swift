import Testing
@testable import Tributary

@Suite struct PerfMonitorTests {
    @Test func ratesFollowTheSamplesGETFPS() {
        let clock = ManualClock()
        let perf = PerfMonitor(streamCount: 2, clock: clock)
        // Stream 0: first frame starts its clock and is not counted; 30 more over 1 s.
        perf.frameArrived(stream: 0)
        for _ in 0..<30 { clock.advance(byMicroseconds: 33_333); perf.frameArrived(stream: 0) }
        clock.advance(byMicroseconds: 10)  // 30 × 33 333 + 10 = 1 000 000 µs
        let rates = perf.takeRates()
        #expect(rates.map(\.stream) == [0, 1])
        #expect(abs(rates[0].fps - 30.0) < 1e-9)
        #expect(rates[1].fps == 0)
        clock.advance(byMicroseconds: 2_000_000)
        perf.frameArrived(stream: 0)
        #expect(abs(perf.takeRates()[0].fps - 0.5) < 1e-9, "one frame over the 2 s since the last report")
    }

    @Test func streamsComeAndGoInIDOrder() {
        let clock = ManualClock()
        let perf = PerfMonitor(streamCount: 2, clock: clock)
        perf.addStream(5)
        perf.removeStream(0)
        perf.addStream(3)
        perf.addStream(3)  // already there: still one entry
        for _ in 0..<3 { perf.frameArrived(stream: 5); clock.advance(byMicroseconds: 500_000) }
        perf.frameArrived(stream: 0)  // removed: ignored
        let rates = perf.takeRates()
        #expect(rates.map(\.stream) == [1, 3, 5])
        #expect(abs(rates[2].fps - 2.0 / 1.5) < 1e-9, "two frames counted after the first, over 1.5 s")
        #expect(PerfMonitor.perfLine(rates).hasPrefix("**PERF:  {'stream1': 0.0, 'stream3': 0.0, 'stream5': 1.33}"))
    }

    @Test func perfLineMatchesPythonsDictRepr() {
        #expect(PerfMonitor.perfLine([(0, 29.971), (1, 30.0), (2, 7.5), (3, 0)]) == "**PERF:  {'stream0': 29.97, 'stream1': 30.0, 'stream2': 7.5, 'stream3': 0.0} ")
        #expect(PerfMonitor.pythonRounded(0.005001) == "0.01")
        #expect(PerfMonitor.pythonRounded(123.456) == "123.46")
        #expect(PerfMonitor.pythonRounded(1.04) == "1.04")
    }
}
