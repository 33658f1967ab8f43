import CGStreamer
import Logging

/// Everything a run needs to know.
public struct PipelineConfiguration: Sendable {
    public var inputs: [SourceURI]
    public var muxer: StreamMuxerConfiguration
    public var tilerWidth: Int
    public var tilerHeight: Int
    /// Where the tiled frames go (several share them through a tee).
    public var outputs: [SinkKind]
    /// Draw boxes and labels on the tiled frames.
    public var osd: Bool
    /// `--save-frames`: a new folder for the sample's frame saving, or nil.
    public var saveFramesFolder: String?
    public var fileLoop: Bool
    /// Print the `**PERF` line every this many nanoseconds (0: never).
    public var perfIntervalNanoseconds: UInt64
    /// Where frames live from the decoder to the tiler: host memory, or one GPU's memory (NVDEC,
    /// our kernels, ONNX Runtime's CUDA provider).
    public var device: ComputeDevice
    /// Time each stage (`Pipeline.stageReport`); a clock read around each step.
    public var measureStages = false
    /// Detectors working on consecutive batches at once, each with its own ONNX Runtime session
    /// and buffers (batches still leave in order). Nil: 2 on a GPU (one batch's host work —
    /// launches, output copies, parsing — overlaps the other's GPU work), 1 on the CPU (ONNX
    /// Runtime already uses every core there).
    public var detectionWorkers: Int?

    public init(inputs: [SourceURI], muxer: StreamMuxerConfiguration, tilerWidth: Int = 1920, tilerHeight: Int = 1080,
                outputs: [SinkKind] = [.discard], osd: Bool = true, saveFramesFolder: String? = nil, fileLoop: Bool = false,
                perfIntervalNanoseconds: UInt64 = 5_000_000_000, device: ComputeDevice = .cpu) {
        self.inputs = inputs
        self.muxer = muxer
        self.tilerWidth = tilerWidth
        self.tilerHeight = tilerHeight
        self.outputs = outputs
        self.osd = osd
        self.saveFramesFolder = saveFramesFolder
        self.fileLoop = fileLoop
        self.perfIntervalNanoseconds = perfIntervalNanoseconds
        self.device = device
    }
}

/// The processor a pipeline's frames live on.
public enum ComputeDevice: Sendable, Equatable, CustomStringConvertible {
    case cpu
    case cuda(gpuID: Int)

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let id): return "cuda:\(id)"
        }
    }
}

/// How a run ended.
public struct PipelineOutcome: Sendable {
    /// Sources that failed, with the element and message GStreamer gave.
    public var sourceFailures: [(source: Int, uri: String, element: String, message: String)]
    /// An error of the output side (encoder, file), if any.
    public var sinkFailure: String?
    /// An error of the detector (a model that fails to run), if any.
    public var detectorFailure: String?
    /// The signal that stopped the run, if one did.
    public var interruptedBy: Int32?
    public var ledger: FrameLedger
    public var batches: Int
    public var anyLive: Bool

    public var succeeded: Bool { sourceFailures.isEmpty && sinkFailure == nil && detectorFailure == nil }
}

/// The whole path of a frame: sources → muxer → detector (one or more detection workers) →
/// probe → frame saver on the calling thread, in order, then tiler → OSD → sink on an output
/// thread behind a bounded queue. One thread per source pulls decoded frames.
public final class Pipeline: @unchecked Sendable {
    public let configuration: PipelineConfiguration
    public let ledger: FrameLedger
    private let logger: Logger
    private let sources: [VideoSource]
    private let muxer: StreamMuxer
    private let tiler: Tiler
    private let sink: VideoSink
    private let perf: PerfMonitor
    /// One per detection worker (empty without a detector).
    private let detectors: [Detector]
    private let osd: OSDRenderer?
    private let frameSaver: FrameSaver?
    /// The GPU path's output stages (nil on the CPU path).
    private let deviceTiler: DeviceTiler?
    private let deviceOSD: DeviceOSD?
    private let interruption = Locked<Int32?>(nil)
    private let stageTimes: StageTimes?
    private let runSeconds = Locked(0.0)

    /// The user's probe: every batch, after the detector and before the tiler, with its metadata
    /// and in-place access to its pixels.
    public var probe: Probe?
    /// Called for every batch on the batch thread right before the probe (stages and tests).
    package var onBatch: ((inout FrameBatch) -> Void)?
    /// Called with every tiled frame before it goes to the sink (tests and frame taps read it here).
    package var onTiledFrame: ((FrameBatch, ImageView) -> Void)?
    /// `--single-output`: the shared stage this pipeline's batches go to instead of its own
    /// tiler → OSD → sink, and this pipeline's shard number there.
    private var sharedOutput: (stage: SharedOutput, shard: Int)?

    /// Sends this pipeline's batches to `stage` (as shard `shard`) instead of its own output.
    /// Call before `run`.
    public func sendBatches(to stage: SharedOutput, shard: Int) { sharedOutput = (stage, shard) }

    /// Called with each `**PERF` line; prints it by default.
    public var onPerfLine: @Sendable (String) -> Void = { line in print("\n\(line)\n"); flushStandardOutput() }

    /// - Parameter detector: the primary detector run on every batch (per its interval); nil runs
    ///   the pipeline without one (decode → mux → tile → sink).
    public init(configuration: PipelineConfiguration, detector: Detector? = nil, logger: Logger) throws {
        guard !configuration.inputs.isEmpty else { throw PipelineError.invalidArgument("no inputs given") }
        self.configuration = configuration
        self.logger = logger
        let count = configuration.inputs.count
        ledger = FrameLedger(sourceCount: count)
        let cudaDevice: CUDADevice?
        if case .cuda(let gpuID) = configuration.device { cudaDevice = try CUDADevice.open(gpuID) } else { cudaDevice = nil }
        sources = try configuration.inputs.enumerated().map { index, uri in
            try VideoSource(id: index, uri: uri, width: configuration.muxer.width, height: configuration.muxer.height,
                            fileLoop: configuration.fileLoop, device: cudaDevice,
                            decoderThreads: VideoSource.softwareDecoderThreads(streams: count), logger: logger)
        }
        var muxerConfiguration = configuration.muxer
        if cudaDevice != nil {
            // Device frames cost no host memory: the GPU path keeps the deeper queues it was
            // measured with (two frames a source, two pending batches; docs/performance.md).
            muxerConfiguration.queueCapacityPerSource = max(2, muxerConfiguration.queueCapacityPerSource)
            muxerConfiguration.maxPendingBatches = max(2, muxerConfiguration.maxPendingBatches)
        }
        muxer = StreamMuxer(configuration: muxerConfiguration, sourceCount: count, ledger: ledger)
        let layout = TileLayout(sourceCount: count, width: configuration.tilerWidth, height: configuration.tilerHeight)
        tiler = Tiler(layout: layout)
        deviceTiler = try cudaDevice.map { try DeviceTiler(device: $0, layout: layout) }
        sink = try VideoSink(outputs: configuration.outputs, width: configuration.tilerWidth, height: configuration.tilerHeight,
                             gpu: cudaDevice?.ordinal ?? 0, device: cudaDevice, logger: logger)
        perf = PerfMonitor(streamCount: count)
        let stageTimes = configuration.measureStages ? StageTimes() : nil
        self.stageTimes = stageTimes
        var detectors: [Detector] = []
        if let detector {
            detector.stageTimes = stageTimes
            detectors = [detector]
            let workers = configuration.detectionWorkers ?? (configuration.device == .cpu ? 1 : 2)
            for _ in 1..<max(1, workers) {
                let sibling = try detector.sibling()
                try sibling.warmUp(batchSize: configuration.muxer.batchSize)
                detectors.append(sibling)
            }
        }
        self.detectors = detectors
        let osd = configuration.osd ? OSDRenderer() : nil
        self.osd = osd
        deviceOSD = try cudaDevice.flatMap { device in try osd.map { try DeviceOSD(device: device, renderer: $0) } }
        frameSaver = try configuration.saveFramesFolder.map { try FrameSaver(folder: $0, sourceCount: count) }
    }

    /// Where the threads spent the last run's time, one line per stage (`measureStages`); empty
    /// when not measured. On the CPU path "sink" includes the compositing done in its buffer.
    public func stageReport() -> [String] {
        stageTimes?.report(wallSeconds: runSeconds.withValue { $0 }, sourceThreads: sources.count,
                           detectionThreads: max(1, detectors.count)) ?? []
    }

    /// The RTSP addresses the output is served at (`--rtsp-port`).
    public var rtspURLs: [String] { sink.rtspURLs }

    /// Stops the run cleanly from any thread (a signal handler's queue): every source stops
    /// pulling as at end-of-stream, frames already queued still flow, and the output is finalised.
    public func requestStop(signal: Int32) {
        let first = interruption.withValue { value -> Bool in
            defer { if value == nil { value = signal } }
            return value == nil
        }
        guard first else { return }
        for source in sources { source.requestStop() }
    }

    /// Runs until every source has ended (or failed) and the sink has finished.
    public func run() -> PipelineOutcome {
        let failures = Locked<[(source: Int, uri: String, element: String, message: String)]>([])
        let clock = MonotonicClock(), started = clock.now()
        defer { runSeconds.withValue { $0 = clock.now().seconds - started.seconds } }
        for source in sources { source.start() }
        let anyLive = sources.contains { $0.isLive }
        if anyLive { print("Atleast one of the sources is live"); flushStandardOutput() }
        let threads = sources.map { source in
            WorkerThread(name: "source-\(source.id)") { [muxer, ledger, stageTimes] in
                let end = source.run(ledger: ledger, times: stageTimes) { frame in muxer.push(frame, live: source.isLive) }
                if case .failed(let element, let message) = end {
                    printError("Error: \(element): \(message) (source \(source.id): \(source.uri.original))")
                    failures.withValue { $0.append((source.id, source.uri.original, element, message)) }
                }
                muxer.sourceEnded(source.id)
            }
        }
        let perfTask = configuration.perfIntervalNanoseconds > 0
            ? PeriodicTask(name: "perf", intervalNanoseconds: configuration.perfIntervalNanoseconds) { [perf, onPerfLine] in
                onPerfLine(PerfMonitor.perfLine(perf.takeRates()))
            }
            : nil

        // The output stage (tiler → OSD → sink, the encoder behind it) runs on its own thread, so
        // the next batch's inference overlaps this batch's tiling and encoding.
        // One batch on the CPU path: enough to overlap, and each more holds a 1080p RGBA frame of
        // every stream in host memory; two on the GPU path (device memory, as measured there).
        let outputQueue = BoundedQueue<FrameBatch>(capacity: deviceTiler == nil ? 1 : 2)
        let sinkFailure = Locked<String?>(nil)
        let shared = sharedOutput
        let outputThread = shared != nil ? nil : WorkerThread(name: "output") { [self] in
            var first = true
            while let batch = stageTimes.measure(.outputWait, { outputQueue.pop() }) {
                guard sinkFailure.withValue({ $0 == nil }) else { continue }  // keep draining so sources finish
                if first, let rate = sources[batch.frames[0].sourceID].frameRate {
                    sink.setFrameRate(numerator: rate.numerator, denominator: rate.denominator)
                }
                first = false
                do {
                    try output(batch)
                } catch {
                    fail(sinkFailure, error)
                }
            }
            if sinkFailure.withValue({ $0 == nil }) {
                do { try sink.finish() } catch { fail(sinkFailure, error) }
            }
        }

        // Detection workers take batches from the muxer in turn, each with its own detector, and
        // hand them back in order to this thread (probe, frame saver, output).
        let workerCount = max(1, detectors.count)
        let detected = ReorderBuffer<FrameBatch>(window: workerCount, producers: workerCount)
        let nextSequence = Locked(0)
        let detectorFailure = Locked<String?>(nil)
        let workers = (0..<workerCount).map { index in
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
                    if index < detectors.count, detectorFailure.withValue({ $0 == nil }) {
                        do {
                            try stageTimes.measure(.detect) { try detectors[index].process(&batch, sequence: sequence) }
                        } catch {
                            fail(detectorFailure, error)
                        }
                    }
                    detected.put(batch, sequence: sequence)
                }
            }
        }
        var batches = 0
        while var batch = stageTimes.measure(.batchInOrder, { detected.next() }) {
            batches += 1
            for frame in batch.frames { perf.frameArrived(stream: frame.sourceID) }
            onBatch?(&batch)
            if let probe {
                var probeBatch = ProbeBatch(batch)
                stageTimes.measure(.probe) { probe(&probeBatch) }
                batch.meta = probeBatch.meta
            }
            if let frameSaver, sinkFailure.withValue({ $0 == nil }) {
                do { try frameSaver.process(batch) } catch { fail(sinkFailure, error) }
            }
            guard let shared else {
                stageTimes.measure(.batchHandOff) { outputQueue.push(batch) }
                continue
            }
            if batches == 1, let rate = sources[batch.frames[0].sourceID].frameRate { shared.stage.offerFrameRate(rate) }
            stageTimes.measure(.batchHandOff) { shared.stage.push(batch, shard: shared.shard) }
            if shared.stage.hasFailed && sinkFailure.withValue({ $0 == nil }) {
                sinkFailure.withValue { $0 = "shared output failed" }  // the shared stage said why
                for source in sources { source.requestStop() }
            }
        }
        for worker in workers { worker.join() }
        if let shared { shared.stage.shardFinished(shared.shard) }
        outputQueue.close()
        outputThread?.join()
        for thread in threads { thread.join() }
        perfTask?.stop()
        // Callbacks often capture the pipeline (to stop it); dropping them here breaks that cycle.
        probe = nil
        onBatch = nil
        onTiledFrame = nil
        return PipelineOutcome(sourceFailures: failures.withValue { $0 }, sinkFailure: sinkFailure.withValue { $0 },
                               detectorFailure: detectorFailure.withValue { $0 },
                               interruptedBy: interruption.withValue { $0 }, ledger: ledger, batches: batches, anyLive: anyLive)
    }

    /// The output stage for one batch: tiler → OSD → sink. On the GPU path the tiled frame is
    /// composited on the device and comes down once, into the sink's buffer, only when a sink or
    /// a tap needs its pixels.
    private func output(_ batch: FrameBatch) throws {
        let pts = batch.frames.compactMap(\.pts).min()
        let muxerWidth = configuration.muxer.width, muxerHeight = configuration.muxer.height
        guard let deviceTiler else {
            // Host frames are composited straight into the sink's buffer (so the sink's time
            // includes the compositing).
            try stageTimes.measure(.outputSink) {
                try sink.pushFrame(pts: pts) { output in
                    stageTimes.measure(.outputComposite) {
                        tiler.composite(batch, osd: osd, muxerWidth: muxerWidth, muxerHeight: muxerHeight, into: output)
                    }
                    onTiledFrame?(batch, output.readOnly)
                }
            }
            return
        }
        if sink.takesDeviceFrames {
            // NVENC takes the frame in CUDA memory: composite straight into the sink's buffer.
            try stageTimes.measure(.outputSink) {
                try sink.pushDeviceFrame(pts: pts) { address, pitch in
                    try stageTimes.measure(.outputComposite) {
                        try deviceTiler.composite(batch, into: address, pitch: pitch)
                        try deviceOSD?.draw(batch.meta, layout: tiler.layout, muxerWidth: muxerWidth, muxerHeight: muxerHeight, on: address,
                                            bytesPerRow: pitch, width: tiler.layout.width, height: tiler.layout.height, stream: deviceTiler.stream)
                        try deviceTiler.stream.synchronize()
                    }
                    if let onTiledFrame {
                        let copy = ImageBuffer.allocateHost(width: tiler.layout.width, height: tiler.layout.height)
                        try copy.withMutableHostView { try deviceTiler.download(from: address, pitch: pitch, into: $0) }
                        copy.withHostView { onTiledFrame(batch, $0) }
                    }
                }
            }
            return
        }
        let output = deviceTiler.output
        let nothingReadsPixels = configuration.outputs == [.discard] && onTiledFrame == nil
        try stageTimes.measure(.outputComposite) {
            try deviceTiler.composite(batch)
            try deviceOSD?.draw(batch.meta, layout: tiler.layout, muxerWidth: muxerWidth, muxerHeight: muxerHeight, on: output.address,
                                bytesPerRow: output.pitch, width: tiler.layout.width, height: tiler.layout.height, stream: deviceTiler.stream)
            // Nothing reads the pixels: wait for the kernels (the batch's frames go back to the
            // decoders' pool after this) and skip the download, as DeepStream's fakesink does.
            if nothingReadsPixels { try deviceTiler.stream.synchronize() }
        }
        try stageTimes.measure(.outputSink) {
            if nothingReadsPixels {
                try sink.pushFrame(pts: pts) { _ in }
                return
            }
            try sink.pushFrame(pts: pts) { output in
                try deviceTiler.download(into: output)
                onTiledFrame?(batch, output.readOnly)
            }
        }
    }

    /// Records the first failure of a stage, says it, and stops the sources so the run ends.
    private func fail(_ slot: Locked<String?>, _ error: Error) {
        let first = slot.withValue { value -> Bool in
            guard value == nil else { return false }
            value = "\(error)"
            return true
        }
        guard first else { return }
        printError("Error: \(error)")
        for source in sources { source.requestStop() }
    }
}
