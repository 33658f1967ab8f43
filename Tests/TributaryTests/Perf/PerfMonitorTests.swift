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
        #expect(abs(rates[0] - 30.0) < 1e-9)
        #expect(rates[1] == 0)
        clock.advance(byMicroseconds: 2_000_000)
        perf.frameArrived(stream: 0)
        #expect(abs(perf.takeRates()[0] - 0.5) < 1e-9, "one frame over the 2 s since the last report")
    }

    @Test func perfLineMatchesPythonsDictRepr() {
        #expect(PerfMonitor.perfLine([29.971, 30.0, 7.5, 0]) == "**PERF:  {'stream0': 29.97, 'stream1': 30.0, 'stream2': 7.5, 'stream3': 0.0} ")
        #expect(PerfMonitor.pythonRounded(0.005001) == "0.01")
        #expect(PerfMonitor.pythonRounded(123.456) == "123.46")
        #expect(PerfMonitor.pythonRounded(1.04) == "1.04")
    }
}
