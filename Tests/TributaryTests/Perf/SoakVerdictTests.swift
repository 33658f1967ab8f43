import Testing
@testable import Tributary

/// The soak's judgement on made-up series: the least-squares trend, the window (the last 20 min,
/// or 2/3 of a shorter run), and each criterion passing and failing.
@Suite struct SoakVerdictTests {
    /// Samples every `interval` s up to `total` s, RSS and fds from the time.
    static func series(total: Double, interval: Double, frameRate: Double = 30, rss: (Double) -> Double,
                       fds: (Double) -> Int = { _ in 40 }, gpu: ((Double) -> Double)? = nil) -> [SoakSample] {
        stride(from: 0.0, through: total, by: interval).map { t in
            SoakSample(seconds: t, frames: Int(t * frameRate), residentMegabytes: rss(t), openFileDescriptors: fds(t), gpuMegabytes: gpu?(t))
        }
    }

    static let balanced = [FrameLedger.SourceCounts(decoded: 100, delivered: 98, dropped: ["shutdown": 2]),
                           FrameLedger.SourceCounts(decoded: 102, delivered: 102)]

    static func verdict(_ samples: [SoakSample], limits: SoakLimits = SoakLimits()) -> SoakVerdict {
        SoakVerdict(samples: samples, ledger: balanced, framesSeen: 200, messagesWritten: 200, failure: nil, limits: limits)
    }

    static func result(_ verdict: SoakVerdict, _ name: String) -> SoakVerdict.Result? {
        verdict.criteria.first { $0.name == name }?.result
    }

    @Test func theTrendIsTheLeastSquaresLine() throws {
        // y = 500 + 0.05 t exactly: slope 0.05 MB/s = 30 MB / 10 min.
        let times = stride(from: 600.0, through: 1800, by: 30).map { $0 }
        let line = try #require(SoakTrend(times: times, values: times.map { 500 + 0.05 * $0 }))
        #expect(abs(line.slopePerSecond - 0.05) < 1e-12)
        #expect(abs(line.perTenMinutes - 30) < 1e-9)
        #expect(line.samples == 41 && line.spanSeconds == 1200)
        #expect(abs(line.mean - 560) < 1e-9)
        #expect(abs(line.relativeGrowth - 60.0 / 560) < 1e-12, "rise over the window (60 MB) over the mean")
        // Noise symmetric about a flat line fits a flat line: +1, −1, +1, … around 400, odd count.
        let noisy = try #require(SoakTrend(times: [0, 1, 2, 3, 4], values: [401, 399, 400, 399, 401]))
        #expect(abs(noisy.slopePerSecond) < 1e-12)
        // By hand: (0, 1), (1, 3), (2, 2): slope Σ(t−1)(y−2) / Σ(t−1)² = (−1·−1 + 1·0) / 2 = 0.5.
        #expect(SoakTrend(times: [0, 1, 2], values: [1, 3, 2])?.slopePerSecond == 0.5)
        #expect(SoakTrend(times: [5], values: [1]) == nil)
        #expect(SoakTrend(times: [5, 5], values: [1, 2]) == nil, "no time between the samples: no slope")
        #expect(SoakTrend(times: [0, 10], values: [0, 0])?.relativeGrowth == 0, "a zero mean is no growth")
    }

    @Test func theWindowIsTheLast20MinutesOrTwoThirdsOfAShorterRun() {
        let thirty = Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }))
        #expect(thirty.windowStart == 600 && thirty.windowEnd == 1800 && thirty.window.count == 41)
        let hour = Self.verdict(Self.series(total: 3600, interval: 30, rss: { _ in 900 }))
        #expect(hour.windowStart == 2400 && hour.window.count == 41, "never more than 20 min")
        let minute = Self.verdict(Self.series(total: 60, interval: 5, rss: { _ in 300 }))
        #expect(minute.windowStart == 20 && minute.window.count == 9)
        #expect(minute.passed)
    }

    @Test func aWarmUpBeforeTheWindowIsNotGrowth() throws {
        // 180 → 900 MB in the first 5 min (queues, pools, caches), then flat with ±2 MB of noise.
        let samples = Self.series(total: 1800, interval: 30, rss: { t in t < 300 ? 180 + 2.4 * t : 900 + (Int(t / 30) % 2 == 0 ? 2 : -2) })
        let verdict = Self.verdict(samples)
        #expect(verdict.passed, "\(verdict.criteria)")
        #expect(Self.result(verdict, "RSS growth over the window") == .pass)
        #expect(abs(try #require(verdict.resident).relativeGrowth) < 0.002)
    }

    @Test func aSteadyLeakFailsAndASmallOnePasses() throws {
        // 3 MB a minute on 1 GB: 60 MB over the 20-min window, ≈ 6 %.
        let leak = Self.verdict(Self.series(total: 1800, interval: 30, rss: { 1000 + 0.05 * $0 }))
        #expect(Self.result(leak, "RSS growth over the window") == .fail)
        #expect(!leak.passed)
        let growth = try #require(leak.resident).relativeGrowth
        #expect(abs(growth - 60.0 / 1060) < 1e-9)
        // 0.5 MB a minute on 1 GB: 10 MB over the window, ≈ 1 %: within 2 %, not within 0.5 %.
        let small = Self.series(total: 1800, interval: 30, rss: { 1000 + 0.5 / 60 * $0 })
        #expect(Self.verdict(small).passed)
        #expect(!Self.verdict(small, limits: SoakLimits(residentGrowth: 0.005)).passed)
        // Shrinking memory is no growth.
        #expect(Self.verdict(Self.series(total: 1800, interval: 30, rss: { 2000 - 0.2 * $0 })).passed)
    }

    @Test func fileDescriptorsMustNotGrow() {
        let name = "open file descriptors"
        let flat = Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }))
        #expect(Self.result(flat, name) == .pass)
        // One kept open every 10 minutes: two over the window.
        let leaking = Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }, fds: { 40 + Int($0 / 600) }))
        #expect(Self.result(leaking, name) == .fail)
        // One opened at 20 min and kept: a step in the window's middle.
        let step = Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }, fds: { $0 >= 1200 ? 41 : 40 }))
        #expect(Self.result(step, name) == .fail)
        // Opened and closed around one sample, even the last: not growth.
        for spike in [600.0, 1200, 1800] {
            let transient = Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }, fds: { $0 == spike ? 41 : 40 }))
            #expect(Self.result(transient, name) == .pass, "a transient descriptor at \(spike) s")
        }
        // The 60-s CI run: 9 samples, a transient at the end still passes, a leak of one every 10 s fails.
        #expect(Self.result(Self.verdict(Self.series(total: 60, interval: 5, rss: { _ in 300 }, fds: { $0 == 60 ? 41 : 40 })), name) == .pass)
        #expect(Self.result(Self.verdict(Self.series(total: 60, interval: 5, rss: { _ in 300 }, fds: { 40 + Int($0 / 10) })), name) == .fail)
    }

    @Test func gpuMemoryIsJudgedOnlyOnAGPURun() {
        let name = "GPU memory growth over the window"
        let cpu = Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }))
        #expect(Self.result(cpu, name) == nil)
        let flat = Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }, gpu: { _ in 4000 }))
        #expect(Self.result(flat, name) == .pass)
        // 1 MB a minute on 4 GB: 20 MB over the window, 0.5 % — within 1 %; 4 MB a minute is 2 %.
        #expect(Self.result(Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }, gpu: { 4000 + $0 / 60 })), name) == .pass)
        #expect(Self.result(Self.verdict(Self.series(total: 1800, interval: 30, rss: { _ in 900 }, gpu: { 4000 + 4 * $0 / 60 })), name) == .fail)
    }

    @Test func theLedgerMustBalance() {
        let samples = Self.series(total: 60, interval: 5, rss: { _ in 300 })
        func ledger(_ counts: [FrameLedger.SourceCounts], seen: Int = 200, messages: Int? = 200) -> SoakVerdict.Result? {
            Self.result(SoakVerdict(samples: samples, ledger: counts, framesSeen: seen, messagesWritten: messages, failure: nil), "frame ledger")
        }
        #expect(ledger(Self.balanced) == .pass)
        #expect(ledger(Self.balanced, messages: nil) == .pass, "no metadata sink")
        // A frame decoded and neither delivered nor dropped.
        #expect(ledger([FrameLedger.SourceCounts(decoded: 101, delivered: 98, dropped: ["shutdown": 2]),
                        FrameLedger.SourceCounts(decoded: 102, delivered: 102)], seen: 200) == .fail)
        // Delivered by the muxer but not seen by the stages, or not written as a message.
        #expect(ledger(Self.balanced, seen: 199, messages: 199) == .fail)
        #expect(ledger(Self.balanced, messages: 199) == .fail)
        #expect(ledger([]) == .fail, "no sources at all")
    }

    @Test func aStallOrAFailureFailsTheRun() {
        // No frame between 30 and 40 s.
        let stalled = Self.series(total: 60, interval: 5, rss: { _ in 300 }).map { sample -> SoakSample in
            var sample = sample
            sample.frames = sample.seconds <= 30 ? Int(sample.seconds * 30) : sample.seconds <= 40 ? 900 : Int(sample.seconds * 30) - 300
            return sample
        }
        let verdict = Self.verdict(stalled)
        #expect(Self.result(verdict, "frames in every interval") == .fail)
        #expect(verdict.criteria.first { $0.name == "frames in every interval" }?.measured.contains("30.0 to 35.0 s") == true)
        let failed = SoakVerdict(samples: Self.series(total: 60, interval: 5, rss: { _ in 300 }), ledger: Self.balanced, framesSeen: 200,
                                 messagesWritten: 200, failure: "output: disk full")
        #expect(!failed.passed && Self.result(failed, "run") == .fail)
    }

    @Test func aRunTooShortIsNotJudgedButNotFailed() {
        // A 3-s run sampled every 30 s: samples at 0 and 3, one in the window.
        let verdict = Self.verdict([SoakSample(seconds: 0, frames: 0, residentMegabytes: 180, openFileDescriptors: 20),
                                    SoakSample(seconds: 3, frames: 60, residentMegabytes: 390, openFileDescriptors: 37)])
        #expect(Self.result(verdict, "RSS growth over the window") == .notJudged)
        #expect(Self.result(verdict, "open file descriptors") == .notJudged)
        #expect(Self.result(verdict, "frame ledger") == .pass)
        #expect(verdict.passed)
    }

    @Test func numbersAreSigned() {
        #expect(SoakVerdict.signed(0.349) == "+0.35")
        #expect(SoakVerdict.signed(-1.2) == "-1.2")
        #expect(SoakVerdict.signed(0) == "+0.0")
    }
}
