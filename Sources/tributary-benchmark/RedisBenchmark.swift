import Logging
import Tributary
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension TributaryBenchmark {
    /// `--redis-throughput N`: N frame messages of 4 objects each through the Redis sink (pipelined
    /// XADDs, DeepStream's key layout) to a `redis-server` started here on 127.0.0.1, from the
    /// first publish to the last acknowledged entry; the median of `--repetitions` runs.
    func redisThroughput(messages total: Int, logger: Logger) throws {
        let port = 26_379
        let server = try ChildProcess(executable: "/usr/bin/redis-server",
                                      arguments: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], pipes: false)
        defer { server.signal(SIGKILL); _ = server.wait() }
        usleep(500_000)
        let builder = FrameMessageBuilder(muxerSize: PixelSize(width: 1920, height: 1080)) { "camera-\($0)" }
        let objects = (0..<4).map { index in
            ObjectMeta(classID: index % 3, label: ["person", "bicycle", "car"][index % 3], confidence: 0.5 + Float(index) / 10,
                       rect: Rect(left: Float(100 * index), top: 200, width: 80, height: 160), detectorID: 1, trackerID: UInt64(index + 1))
        }
        let batchSize = 32
        let batches = (0..<(total / batchSize)).map { batch -> [FrameMessage] in
            (0..<batchSize).map { index in
                var frame = FrameMeta(sourceID: index, batchID: batch, frameNumber: batch, pts: UInt64(batch) * 33_333_333, objects: objects)
                frame.sourceSize = PixelSize(width: 1920, height: 1080)
                frame.inferenceDone = true
                return builder.message(frame, timestamp: "2026-12-07T12:00:00.000Z")
            }
        }
        let bytes = batches.first?.first?.json.utf8.count ?? 0
        print("Redis sink throughput: \(batches.count * batchSize) messages of 4 objects (\(bytes) bytes each), batches of \(batchSize), "
              + "to redis-server 127.0.0.1 (no persistence), median of \(repetitions)")
        print("| messages | seconds | messages/s | process CPU s (publishing and sending) |")
        print("|---|---|---|---|")
        var rates: [Double] = []
        for run in 0..<repetitions {
            let spool = "/tmp/tributary-benchmark-spool-\(getpid())-\(run)"
            var configuration = try RedisSinkConfiguration(url: "redis://127.0.0.1:\(port)", spoolDirectory: spool)
            configuration.stream = "bench-\(run)"
            configuration.memoryCapacity = total + batchSize  // the sink's own rate: nothing dropped, all queued at once
            let sink = try BrokerSink.redis(configuration, logger: logger)
            let cpuBefore = processCPUSeconds()
            let started = MonotonicClock().now()
            for batch in batches { try sink.publish(batch) }
            try sink.finish()
            let seconds = MonotonicClock().now().seconds - started.seconds
            let cpu = processCPUSeconds() - cpuBefore
            let counts = sink.counts
            guard counts.sent + counts.replayed == batches.count * batchSize else {
                throw PipelineError.failed(what: "redis benchmark", message: sink.summary)
            }
            let rate = Double(batches.count * batchSize) / seconds
            rates.append(rate)
            print("| \(batches.count * batchSize) | \(f(seconds)) | \(f(rate)) | \(f(cpu)) |")
            rmdir(spool)
        }
        print("Median: \(f(rates.sorted()[rates.count / 2])) messages/s")
    }

    private func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
