import CoreMetrics
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
    /// The muxer's batch size follows the number of sources present (at least 1) as sources are
    /// added and removed, as the app's default batch size is the number of inputs.
    public var batchSizeFollowsSources = false
    /// With `batchSizeFollowsSources`: the batch follows the sources up to this many frames
    /// (nvmultiurisrcbin's `max-batch-size`); nil: no cap. A smaller batch fills sooner, so a
    /// real-time camera's frame waits less for the others' (docs/performance.md).
    public var maxBatchSize: Int?
    /// nvdsanalytics' rules by source id (`AnalyticsConfiguration`), run after the tracker; empty:
    /// no analytics.
    public var analytics: [Int: StreamAnalyticsRules] = [:]
    /// Sources hand their frames out at their presentation times (files play at their frame rate,
    /// as cameras), not as fast as they decode; and, as cameras, a late one drops its oldest queued
    /// frame (counted) rather than waiting.
    public var realTime = false
    /// How live sources that drop out come back (`--rtsp-reconnect-interval`, `--rtsp-reconnect-attempts`).
    public var recovery: SourceRecoveryPolicy = .default
    /// Where the histograms go (inference time, batch fill, frame latency); nil: the process's
    /// swift-metrics backend (none unless bootstrapped).
    public var metricsFactory: (any MetricsFactory)?

    public init(inputs: [SourceURI], muxer: StreamMuxerConfiguration, tilerWidth: Int = 1920, tilerHeight: Int = 1080,
                outputs: [SinkKind] = [.discard], osd: Bool = true, fileLoop: Bool = false,
                perfIntervalNanoseconds: UInt64 = 5_000_000_000, device: ComputeDevice = .cpu) {
        self.inputs = inputs
        self.muxer = muxer
        self.tilerWidth = tilerWidth
        self.tilerHeight = tilerHeight
        self.outputs = outputs
        self.osd = osd
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

/// A source that failed, with the element and message GStreamer gave.
public struct SourceFailure: Error, Sendable, CustomStringConvertible {
    public var source: Int
    public var uri: String
    public var element: String
    public var message: String

    public var description: String { "\(element): \(message) (source \(source): \(uri))" }
}

/// An output that failed while the run went on without it (a full disk, a file it could not
/// write): the other outputs, the metadata sinks and the sources keep going.
public struct OutputFailure: Sendable, Equatable, CustomStringConvertible {
    /// The output: its path, folder or address.
    public var target: String
    /// What failed, as GStreamer or the system said it.
    public var message: String

    public init(target: String, message: String) {
        self.target = target
        self.message = message
    }

    public var description: String { "\(message) (output \(target))" }
}

/// Thrown by a stage whose output failed in a way the run survives: the pipeline records each
/// failure and goes on (`PipelineEvent.outputFailed`, `PipelineOutcome.outputFailures`).
public struct OutputFailures: Error, Sendable, CustomStringConvertible {
    public var failures: [OutputFailure]

    public init(_ failures: [OutputFailure]) { self.failures = failures }

    public var description: String { failures.map(\.description).joined(separator: "; ") }
}

/// What a running pipeline tells its owner as it happens (`Pipeline.onEvent`).
public enum PipelineEvent: Sendable {
    /// The first live source (rtsp) started.
    case liveSource(Int)
    /// A source failed for good (it cannot be decoded, or a live one ran out of attempts); the others go on.
    case sourceFailed(SourceFailure)
    /// A source's state changed: a live one lost (stalled, backing off), rebuilt (connecting) or
    /// streaming again; said before `sourceFailed` too.
    case sourceState(SourceStatus)
    /// The detector, a batch stage or the output failed: the sources stop, the run ends.
    case stageFailed(any Error)
    /// One output failed (a full disk): the run goes on without it, and ends with exit status 1.
    case outputFailed(OutputFailure)
    /// Every `perfIntervalNanoseconds`: each stream's frames per second since the last report,
    /// as the sample's `GETFPS` computes them (`PerfMonitor.perfLine` writes its `**PERF` line).
    case perf([(stream: Int, fps: Double)])

    /// The framework's own way of telling: a log line.
    func log(to logger: Logger) {
        switch self {
        case .liveSource(let id): logger.info("source \(id) is live")
        case .sourceFailed(let failure): logger.error("\(failure)")
        case .sourceState(let status): logger.notice("\(status)")
        case .stageFailed(let error): logger.error("\(error)")
        case .outputFailed(let failure): logger.error("\(failure); going on without it")
        case .perf(let rates): logger.info("\(PerfMonitor.perfLine(rates))")
        }
    }
}

/// How a run ended.
public struct PipelineOutcome: Sendable {
    public var sourceFailures: [SourceFailure]
    /// The first error of the output side (a batch stage, the encoder, the file), if any.
    public var sinkFailure: (any Error)?
    /// The first error of the detector (a model that fails to run), if any.
    public var detectorFailure: (any Error)?
    /// The outputs that failed while the run went on without them.
    public var outputFailures: [OutputFailure] = []
    /// The signal that stopped the run, if one did.
    public var interruptedBy: Int32?
    public var ledger: FrameLedger
    public var batches: Int
    public var anyLive: Bool

    public var succeeded: Bool { sourceFailures.isEmpty && sinkFailure == nil && detectorFailure == nil && outputFailures.isEmpty }
}

extension PipelineError {
    /// The one place errors become exit codes: 2 for what the user gave (inputs, config, model),
    /// 1 for what failed while running.
    public static func exitStatus(for error: any Error) -> Int32 {
        switch error {
        case is InferConfigurationError: return 2
        case let error as PipelineError:
            switch error {
            case .invalidURI, .unsupportedScheme, .fileNotFound, .invalidArgument: return 2
            default: return 1
            }
        case let error as InferenceError:
            switch error {
            case .modelLoad, .unsupportedModel: return 2
            default: return 1
            }
        default: return 1
        }
    }
}
