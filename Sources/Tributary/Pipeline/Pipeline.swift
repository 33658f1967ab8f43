import Logging

/// The whole path of a frame: sources → muxer → detector (one or more detection workers) →
/// probe and the batch stages on the calling thread, in order, then the output stage (tiler →
/// OSD → sink) on an output thread behind a bounded queue. One thread per source pulls frames.
public final class Pipeline: @unchecked Sendable {
    public let configuration: PipelineConfiguration
    public let ledger: FrameLedger
    let logger: Logger
    /// The sources present, by id, and how they came (`addSource`, `removeSource`).
    let sources: Locked<SourceTable>
    /// Serialises `addSource` (a new source is built outside the table's lock).
    let addLock = ConditionLock()
    private let sourceFailures = Locked<[SourceFailure]>([])
    let muxer: StreamMuxer
    let perf: PerfMonitor
    /// One per detection worker (empty without a detector).
    private let detectors: [Detector]
    /// The stages between the detector and the probe, so the probe sees their work: the tracker
    /// when the detector's config has a `[tracker]` group, then the analytics when configured.
    private let analysisStages: [any BatchStage]
    /// Among `analysisStages`, when configured.
    private let analytics: AnalyticsStage?
    /// The stages after the probe, in the order they were `append`ed (the sample's frame saver,
    /// a tracker, …); the test tap and the probe run first.
    var stages: [any BatchStage] = []
    /// Tiler → OSD → sink, or a shard of a shared output; chosen once, here.
    private let output: any OutputStage
    private let interruption = Locked<Int32?>(nil)
    private let cudaDevice: CUDADevice?
    let makeSource: SourceFactory
    private let stageTimes: StageTimes?
    private let metrics: PipelineMetrics
    private let clock = MonotonicClock()
    private let runSeconds = Locked(0.0)
    /// The first failure of the output side and of the detector.
    private let sinkFailure = Locked<(any Error)?>(nil)
    private let detectorFailure = Locked<(any Error)?>(nil)
    /// Outputs that failed while the run goes on (`OutputFailures`).
    private let outputFailures = Locked<[OutputFailure]>([])

    /// The user's probe: every batch, after the detector and before the tiler, with its metadata
    /// and in-place access to its pixels.
    public var probe: Probe?
    /// Called for every batch on the batch thread right before the probe (stages and tests).
    package var onBatch: ((inout FrameBatch) -> Void)?
    /// Reads the tiled frames it wants before they go to the sink (a live view); set before `run`.
    package var frameTap: (any TiledFrameTap)? {
        get { output.tap }
        set { output.tap = newValue }
    }

    /// Called with every tiled frame before it goes to the sink (tests read it here).
    package var onTiledFrame: ((FrameBatch, ImageView) -> Void)? {
        get { output.everyTiledFrame }
        set { output.everyTiledFrame = newValue }
    }

    /// A stage after the probe and the stages appended before it, for every batch. Call before `run`.
    public func append(_ stage: any BatchStage) { stages.append(stage) }

    /// Told what happens as it happens, on the thread it happens on (a source's, the output's,
    /// the perf timer's). By default the framework only logs; the app prints the sample's lines.
    public var onEvent: @Sendable (PipelineEvent) -> Void

    /// - Parameters:
    ///   - detector: the primary detector run on every batch (per its interval); nil runs the
    ///     pipeline without one (decode → mux → tile → sink).
    ///   - sharedOutput: `--single-output`: the shared stage this pipeline's batches go to (as shard
    ///     `shard`) instead of a tiler → OSD → sink of its own.
    public convenience init(configuration: PipelineConfiguration, detector: Detector? = nil,
                            sharedOutput: (stage: SharedOutput, shard: Int)? = nil, logger: Logger) throws {
        try self.init(configuration: configuration, detector: detector, logger: logger, sources: nil,
                      output: sharedOutput.map { SharedOutputShard($0.stage, shard: $0.shard) })
    }

    /// Makes a pipeline's source `id` of `uri`.
    package typealias SourceFactory = @Sendable (_ id: Int, _ uri: SourceURI) throws -> any FrameSource

    /// The seam for tests: `sources` makes every source (initial and added; nil: a `VideoSource`
    /// per input), `output` takes the batches (nil: the output stage for the configured device and
    /// outputs).
    package init(configuration: PipelineConfiguration, detector: Detector? = nil, logger: Logger,
                 sources makeSource: SourceFactory?, output: (any OutputStage)?) throws {
        guard !configuration.inputs.isEmpty || configuration.muxer.acceptsNewSources else {
            throw PipelineError.invalidArgument("no inputs given")
        }
        self.configuration = configuration
        self.logger = logger
        onEvent = { event in event.log(to: logger) }
        returnLargeBlocksWhenFreed()
        let count = configuration.inputs.count
        ledger = FrameLedger(sourceCount: count)
        let cudaDevice: CUDADevice?
        if case .cuda(let gpuID) = configuration.device { cudaDevice = try CUDADevice.open(gpuID) } else { cudaDevice = nil }
        self.cudaDevice = cudaDevice
        let sources = Locked(SourceTable())
        self.sources = sources
        let makeSource = makeSource ?? { id, uri in
            // Decoder threads for the sources present with this one (one each once streams ≥ cores).
            let streams = max(count, sources.withValue { $0.sources.count + 1 })
            return try VideoSource(id: id, uri: uri, width: configuration.muxer.width, height: configuration.muxer.height,
                                   fileLoop: configuration.fileLoop, device: cudaDevice,
                                   decoderThreads: VideoSource.softwareDecoderThreads(streams: streams), realTime: configuration.realTime,
                                   logger: logger)
        }
        self.makeSource = makeSource
        let initial = try configuration.inputs.enumerated().map { try makeSource($0, $1) }
        sources.withValue { table in
            for source in initial { table.insert(source, cameraID: nil) }
            table.inputClosed = !configuration.muxer.acceptsNewSources
        }
        var muxerConfiguration = configuration.muxer
        if cudaDevice != nil {
            // Device frames cost no host memory: the GPU path keeps the deeper queues it was
            // measured with (two frames a source, two pending batches; docs/performance.md).
            muxerConfiguration.queueCapacityPerSource = max(2, muxerConfiguration.queueCapacityPerSource)
            muxerConfiguration.maxPendingBatches = max(2, muxerConfiguration.maxPendingBatches)
        }
        muxer = StreamMuxer(configuration: muxerConfiguration, sourceCount: count, ledger: ledger)
        perf = PerfMonitor(streamCount: count)
        let stageTimes = configuration.measureStages ? StageTimes() : nil
        self.stageTimes = stageTimes
        metrics = PipelineMetrics(factory: configuration.metricsFactory)
        detectors = try Self.detectionWorkers(detector, configuration: configuration, device: cudaDevice, times: stageTimes)
        var analysisStages: [any BatchStage] = detector?.configuration.tracker.map { [TrackerStage(configuration: $0)] } ?? []
        analytics = configuration.analytics.isEmpty ? nil : AnalyticsStage(rules: configuration.analytics)
        if let analytics { analysisStages.append(analytics) }
        self.analysisStages = analysisStages
        self.output = try output ?? Self.makeOutputStage(configuration: configuration, device: cudaDevice, times: stageTimes, logger: logger)
    }

    /// The output stage for where the frames live, chosen once.
    private static func makeOutputStage(configuration: PipelineConfiguration, device: CUDADevice?, times: StageTimes?,
                                        logger: Logger) throws -> any OutputStage {
        let layout = TileLayout(sourceCount: configuration.inputs.count, width: configuration.tilerWidth, height: configuration.tilerHeight)
        let sink = try VideoSink(outputs: configuration.outputs, width: configuration.tilerWidth, height: configuration.tilerHeight,
                                 gpu: device?.ordinal ?? 0, device: device, logger: logger)
        let osd = configuration.osd ? OSDRenderer() : nil
        let geometry = OutputGeometry(muxerWidth: configuration.muxer.width, muxerHeight: configuration.muxer.height)
        guard let device else { return HostOutput(layout: layout, osd: osd, sink: sink, geometry: geometry, times: times) }
        return try DeviceOutput(device: device, layout: layout, osd: osd, sink: sink, discards: configuration.outputs == [.discard],
                                geometry: geometry, times: times)
    }

    /// The detector and its siblings, one a detection worker: each with its own ONNX Runtime
    /// session and buffers (2 on a GPU, 1 on the CPU unless configured), bound to where the
    /// frames live.
    private static func detectionWorkers(_ detector: Detector?, configuration: PipelineConfiguration, device: CUDADevice?,
                                         times: StageTimes?) throws -> [Detector] {
        guard let detector else { return [] }
        detector.stageTimes = times
        try detector.bind(to: device)
        var detectors = [detector]
        let workers = configuration.detectionWorkers ?? (configuration.device == .cpu ? 1 : 2)
        for _ in 1..<max(1, workers) {
            let sibling = try detector.sibling()
            try sibling.warmUp(batchSize: configuration.muxer.batchSize)
            detectors.append(sibling)
        }
        return detectors
    }

    /// Where the threads spent the last run's time, one line per stage (`measureStages`); empty
    /// when not measured. On the CPU path "sink" includes the compositing done in its buffer.
    public func stageReport() -> [String] {
        stageTimes?.report(wallSeconds: runSeconds.withValue { $0 }, sourceThreads: ledger.sourceIDs.count,
                           detectionThreads: max(1, detectors.count)) ?? []
    }

    /// The RTSP addresses the output is served at (`--rtsp-port`).
    public var rtspURLs: [String] { output.rtspURLs }

    /// Stops the run cleanly from any thread (a signal handler's queue): every source stops
    /// pulling as at end-of-stream, frames already queued still flow, and the output is finalised.
    public func requestStop(signal: Int32) {
        let first = interruption.withValue { value -> Bool in
            defer { if value == nil { value = signal } }
            return value == nil
        }
        guard first else { return }
        stopSources()
    }

    /// Every source stops pulling as at end-of-stream, and no source is added after: the run ends
    /// once their queued frames went out.
    private func stopSources() {
        let (present, supervisors) = sources.withValue { table in
            table.inputClosed = true
            return (Array(table.sources.values), Array(table.supervisors.values))
        }
        for source in present { source.requestStop() }
        for supervisor in supervisors { supervisor.stop() }
        muxer.closeInput()
    }

    /// The source's thread: pulls its frames into the muxer until end-of-stream, failure or removal;
    /// a live source that drops out is rebuilt (`configuration.recovery`) on the same thread.
    func startThread(of source: any FrameSource) {
        source.start()
        let firstLive = source.isLive && sources.withValue { table in
            defer { table.anyLive = true }
            return !table.anyLive
        }
        if firstLive { onEvent(.liveSource(source.id)) }
        let (cameraID, firstFrameNumber) = sources.withValue { ($0.cameras.first { $0.value == source.id }?.key, $0.firstFrameNumbers[source.id] ?? 0) }
        let supervisor = SourceSupervisor(source: source, cameraID: cameraID, firstFrameNumber: firstFrameNumber, policy: configuration.recovery,
                                          rebuild: { [makeSource] in try makeSource(source.id, source.uri) },
                                          onChange: { [onEvent] in onEvent(.sourceState($0)) })
        // In real time a file stands for a camera, and a late camera's oldest frame is dropped
        // (counted) rather than the camera waiting: a frame that missed its batch does not hold
        // its stream back behind the others (a batch takes one frame a source).
        let realTime = configuration.realTime
        let thread = WorkerThread(name: "source-\(source.id)") { [muxer, ledger, stageTimes, sourceFailures, onEvent] in
            let end = supervisor.run(ledger: ledger, times: stageTimes) { frame, live in muxer.push(frame, live: live || realTime) }
            if case .failed(let element, let message) = end {
                let failure = SourceFailure(source: source.id, uri: source.uri.original, element: element, message: message)
                sourceFailures.withValue { $0.append(failure) }
                onEvent(.sourceFailed(failure))
            }
            muxer.sourceEnded(source.id)
        }
        sources.withValue {
            $0.threads[source.id] = thread
            $0.supervisors[source.id] = supervisor
        }
    }

    /// What each source present is doing, ascending by id (those not started yet: connecting).
    /// Each source's analytics on its latest frame, when analytics run (`PipelineConfiguration.analytics`).
    public var analyticsResults: [Int: FrameAnalytics] {
        analytics?.latestResults ?? [:]
    }

    public var sourceStatuses: [SourceStatus] {
        sources.withValue { table in
            table.presentIDs.compactMap { id in
                table.supervisors[id]?.status ?? table.sources[id].map { source in
                    SourceStatus(sourceID: id, cameraID: table.cameras.first { $0.value == id }?.key, uri: source.uri.original,
                                 state: .connecting, reconnects: 0, attempt: 0, lastError: nil, expectedFrames: source.expectedFrameCount)
                }
            }
        }
    }

    /// The stages every batch passes in order on the run's thread: the framework's own callback,
    /// the detector's analysis (tracker, analytics), the user's probe, then the stages added.
    private func batchStages() -> [any BatchStage] {
        var list: [any BatchStage] = []
        if let onBatch { list.append(ClosureStage(onBatch)) }
        list += analysisStages
        if let probe { list.append(ProbeStage(probe, times: stageTimes)) }
        return list + stages
    }

    /// Runs until every source has ended (or failed) and the sink has finished; with
    /// `acceptsNewSources`, until `closeInput` or a stop as well. Threads: one per source, the
    /// detection workers, this one (the batch stages, in order) and the output's.
    public func run() -> PipelineOutcome {
        let clock = MonotonicClock(), started = clock.now()
        defer { runSeconds.withValue { $0 = clock.now().seconds - started.seconds } }
        let initial = sources.withValue { table in
            table.running = true
            return table.presentIDs.compactMap { table.sources[$0] }
        }
        for source in initial { startThread(of: source) }
        // Finds stalled live sources and wakes those whose retry is due.
        let watchdog = configuration.recovery.stallTimeoutNanoseconds.map { _ in
            PeriodicTask(name: "recovery", intervalNanoseconds: 100_000_000) { [sources] in
                for supervisor in sources.withValue({ Array($0.supervisors.values) }) { supervisor.tick() }
            }
        }
        let perfTask = configuration.perfIntervalNanoseconds > 0
            ? PeriodicTask(name: "perf", intervalNanoseconds: configuration.perfIntervalNanoseconds) { [perf, onEvent] in
                onEvent(.perf(perf.takeRates()))
            }
            : nil
        // One batch on the CPU path: enough for the next batch's inference to overlap this one's
        // tiling and encoding, and each more holds a 1080p RGBA frame of every stream in host
        // memory; two on the GPU path (device memory, as measured there).
        let outputQueue = BoundedQueue<FrameBatch>(capacity: cudaDevice == nil ? 1 : 2)
        let outputThread = WorkerThread(name: "output") { [self] in runOutput(outputQueue) }
        let workerCount = max(1, detectors.count)
        let detected = ReorderBuffer<FrameBatch>(window: workerCount, producers: workerCount)
        let workers = startDetectionWorkers(count: workerCount, into: detected)
        let stageList = batchStages()
        var batches = 0
        while var batch = stageTimes.measure(.batchInOrder, { detected.next() }) {
            batches += 1
            for frame in batch.frames { perf.frameArrived(stream: frame.sourceID) }
            for stage in stageList where sinkFailure.withValue({ $0 == nil }) {
                do { try stage.process(&batch) } catch { fail(sinkFailure, error) }
            }
            stageTimes.measure(.batchHandOff) { outputQueue.push(batch) }
        }
        for worker in workers { worker.join() }
        outputQueue.close()
        outputThread.join()
        for stage in stageList { do { try stage.finish() } catch { fail(sinkFailure, error) } }
        let threads = sources.withValue { table in
            defer { table.threads = [:]; table.supervisors = [:]; table.inputClosed = true }
            return Array(table.threads.values)
        }
        for thread in threads { thread.join() }
        watchdog?.stop()
        perfTask?.stop()
        // Callbacks often capture the pipeline (to stop it); dropping them here breaks that cycle.
        probe = nil
        onBatch = nil
        frameTap = nil
        return PipelineOutcome(sourceFailures: sourceFailures.withValue { $0 }, sinkFailure: sinkFailure.withValue { $0 },
                               detectorFailure: detectorFailure.withValue { $0 }, outputFailures: outputFailures.withValue { $0 },
                               interruptedBy: interruption.withValue { $0 }, ledger: ledger, batches: batches,
                               anyLive: sources.withValue { $0.anyLive })
    }

    /// The output thread: every batch through the output stage, in order; after a failure the
    /// batches are still taken (so the sources finish) but go nowhere.
    private func runOutput(_ queue: BoundedQueue<FrameBatch>) {
        var first = true
        while let batch = stageTimes.measure(.outputWait, { queue.pop() }) {
            guard sinkFailure.withValue({ $0 == nil }) else { continue }
            if first { output.start(frameRate: frameRate(of: batch)) }
            first = false
            do { try output.output(batch) } catch { fail(sinkFailure, error) }
            let now = clock.now()
            for frame in batch.frames {
                if let decoded = frame.decodedAt { metrics.frameLatency.recordNanoseconds(now.nanoseconds(since: decoded)) }
            }
        }
        do { try output.finish(failed: sinkFailure.withValue { $0 != nil }) } catch { fail(sinkFailure, error) }
    }

    /// Detection workers take batches from the muxer in turn, each with its own detector, and
    /// hand them back in order (`detected`).
    private func startDetectionWorkers(count: Int, into detected: ReorderBuffer<FrameBatch>) -> [WorkerThread] {
        let nextSequence = Locked(0)
        return (0..<count).map { index in
            WorkerThread(name: "detect-\(index)") { [self] in
                defer { detected.producerFinished() }
                // A batch and its place in the stream are taken together.
                while let (sequence, taken) = stageTimes.measure(.batchWait, {
                    nextSequence.withValue { next -> (Int, FrameBatch)? in
                        guard let batch = muxer.nextBatch() else { return nil }
                        defer { next += 1 }
                        return (next, batch)
                    }
                }) {
                    var batch = taken
                    batch.sourcesPresent = sourcesShown(with: batch)
                    metrics.batchFill.record(Double(batch.frames.count) / Double(max(1, muxer.batchSize)))
                    if index < detectors.count, detectorFailure.withValue({ $0 == nil }) {
                        let started = clock.now()
                        do {
                            try stageTimes.measure(.detect) { try detectors[index].process(&batch, sequence: sequence) }
                        } catch {
                            fail(detectorFailure, error)
                        }
                        metrics.inference.recordNanoseconds(clock.now().nanoseconds(since: started))
                    }
                    detected.put(batch, sequence: sequence)
                }
            }
        }
    }

    /// The grid a batch is tiled in: the sources present as it leaves the muxer, and a removed
    /// one whose drained frames are in it.
    private func sourcesShown(with batch: FrameBatch) -> [Int] {
        let present = sources.withValue { $0.presentIDs }
        let extra = batch.frames.map(\.sourceID).filter { !present.contains($0) }
        return extra.isEmpty ? present : Array(Set(present + extra)).sorted()
    }

    /// The frame rate of the batch's first source, as its decoder reported it.
    private func frameRate(of batch: FrameBatch) -> (numerator: Int, denominator: Int)? {
        batch.frames.first.flatMap { frame in sources.withValue { $0.sources[frame.sourceID] }?.frameRate }
    }

    /// Records the first failure of a stage, says it, and stops the sources so the run ends; an
    /// output's failure the run survives (`OutputFailures`) is recorded and said, and the run goes on.
    private func fail(_ slot: Locked<(any Error)?>, _ error: any Error) {
        if let failed = error as? OutputFailures {
            outputFailures.withValue { $0 += failed.failures }
            for failure in failed.failures { onEvent(.outputFailed(failure)) }
            return
        }
        let first = slot.withValue { value -> Bool in
            guard value == nil else { return false }
            value = error
            return true
        }
        guard first else { return }
        if !(error is SharedOutputFailed) { onEvent(.stageFailed(error)) }  // the shared output said it
        stopSources()
    }
}
