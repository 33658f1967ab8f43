import CoreMetrics

/// The pipeline's histograms, through swift-metrics: nothing is kept until the process bootstraps
/// a backend (the service bootstraps its Prometheus registry; the sample app none). The counters
/// per camera are not here: they come from the frame ledger, read when scraped, so `/metrics`,
/// the exit summary and the REST view agree.
struct PipelineMetrics: Sendable {
    let inference: CoreMetrics.Timer
    let batchFill: Recorder
    let frameLatency: CoreMetrics.Timer

    /// - Parameter factory: nil: the process's (`MetricsSystem.bootstrap`); tests pass their own.
    init(factory: (any MetricsFactory)?) {
        if let factory {
            inference = Timer(label: PipelineMetricNames.inferenceSeconds, factory: factory)
            batchFill = Recorder(label: PipelineMetricNames.batchFillRatio, factory: factory)
            frameLatency = Timer(label: PipelineMetricNames.frameLatencySeconds, factory: factory)
        } else {
            inference = Timer(label: PipelineMetricNames.inferenceSeconds)
            batchFill = Recorder(label: PipelineMetricNames.batchFillRatio)
            frameLatency = Timer(label: PipelineMetricNames.frameLatencySeconds)
        }
    }
}

/// The histograms' names and the buckets that fit them, for the backend the process bootstraps.
public enum PipelineMetricNames {
    /// Per batch, the detector's whole step (pre-process, engine, parse), in seconds.
    public static let inferenceSeconds = "tributary_inference_seconds"
    /// Per batch, its frames over the batch size.
    public static let batchFillRatio = "tributary_batch_fill_ratio"
    /// Per frame, from leaving its decoder to the sink having taken its tiled batch, in seconds.
    public static let frameLatencySeconds = "tributary_frame_latency_seconds"
    /// Seconds: from 1 ms (a small model's batch) to 10 s.
    public static let secondsBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10]
    public static let ratioBuckets: [Double] = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1]
    /// What each one measures (Prometheus' HELP line).
    public static let help: [String: String] = [
        inferenceSeconds: "Seconds the detector took per batch (pre-process, engine, parse)",
        batchFillRatio: "Frames in a batch over the batch size",
        frameLatencySeconds: "Seconds from a frame leaving its decoder to the sink taking its tiled batch",
    ]
}
