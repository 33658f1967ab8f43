import CoreMetrics
import Prometheus
import Tributary

/// `/metrics` in Prometheus' text format. The pipeline's histograms (inference time, batch fill,
/// frame latency) come through swift-metrics into this registry as they happen; the per-camera
/// counters are read from the frame ledger and the sources' status at each scrape, so `/metrics`,
/// `get-stream-info` and the exit summary agree.
public final class MetricsExporter: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Give it to the pipeline (`PipelineConfiguration.metricsFactory`).
    public let factory: any MetricsFactory
    private let exported = Locked(Exported())

    /// What the counters already hold, per source (a camera re-added is a new source: its
    /// counts add to the camera's series).
    private struct Exported {
        var decoded: [Int: Int] = [:]
        var delivered: [Int: Int] = [:]
        var dropped: [Int: [String: Int]] = [:]
        var reconnects: [Int: Int] = [:]
        var lostInDecoder: [Int: Int] = [:]
        var gapNanoseconds: [Int: UInt64] = [:]
        /// Cameras with state and fps gauges, so that a removed camera's gauges go.
        var gauged: Set<String> = []
        var fps: [String: Double] = [:]
        var sinks: [String: MetadataSinkCounts] = [:]
        var crossings: [Int: [String: Int]] = [:]
        /// The analytics gauges set, per camera: (descriptor, rule name).
        var analyticsGauged: [String: [(MetricNameDescriptor, String)]] = [:]
        var liveViewFrames = 0
        var renewFailures = 0
        var fenced = 0
    }

    /// The metadata sinks whose counts `/metrics` shows (`tributary_meta_*_total{sink=…}`).
    public let metadataSinks: [any MetadataSink]

    /// `tributary_<name>`, its help line.
    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "tributary", metricName: name, unitName: "", helpText: help)
    }
    static var decoded: MetricNameDescriptor { descriptor("frames_decoded_total", "Frames decoded, per camera") }
    static var delivered: MetricNameDescriptor { descriptor("frames_delivered_total", "Frames delivered in a batch, per camera") }
    static var dropped: MetricNameDescriptor { descriptor("frames_dropped_total", "Frames dropped, per camera and reason") }
    static var reconnects: MetricNameDescriptor { descriptor("source_reconnects_total", "Recoveries of a lost live camera, per camera") }
    static var gap: MetricNameDescriptor { descriptor("source_gap_seconds_total", "Seconds a live camera was gone, across its recoveries, per camera") }
    static var state: MetricNameDescriptor { descriptor("source_state", "1 for the camera's current state") }
    static var fps: MetricNameDescriptor { descriptor("stream_fps", "Frames per second over the latest perf interval, per camera") }
    static func meta(_ what: String) -> MetricNameDescriptor {
        descriptor("meta_\(what)_total", "Frame messages \(what) by each metadata sink")
    }
    static var sources: MetricNameDescriptor { descriptor("sources", "Cameras present") }
    static var liveViewFrames: MetricNameDescriptor { descriptor("live_view_frames_total", "JPEG frames the dashboard's live view encoded") }
    static var liveViewers: MetricNameDescriptor { descriptor("live_view_viewers", "Live views watched now") }
    static var roiObjects: MetricNameDescriptor { descriptor("analytics_roi_objects", "Objects in each region on the camera's latest frame") }
    static var overcrowded: MetricNameDescriptor { descriptor("analytics_overcrowded", "1 while the region holds more objects than its threshold") }
    static var crossings: MetricNameDescriptor { descriptor("analytics_line_crossings_total", "Line crossings, per camera and line") }
    static var workerCameras: MetricNameDescriptor { descriptor("worker_cameras", "Cameras this worker runs under its leases") }
    static var renewFailures: MetricNameDescriptor {
        descriptor("lease_renew_failures_total", "Lease renewals that got no answer from Redis")
    }
    static var fenced: MetricNameDescriptor {
        descriptor("fenced_publish_rejected_total", "Frame messages refused because their camera's lease was no longer this worker's")
    }

    /// The dashboard's live view, whose frames and viewers `/metrics` counts.
    let liveView: LiveView?

    /// `tributary worker`: its cameras, lease renewals that failed, messages fenced off.
    let worker: ClusterWorker?

    public init(metadataSinks: [any MetadataSink] = [], liveView: LiveView? = nil, worker: ClusterWorker? = nil) {
        self.worker = worker
        factory = HistogramsWithHelp(registry: registry)
        self.metadataSinks = metadataSinks
        self.liveView = liveView
    }

    /// A `**PERF` report: each stream's frames per second (`tributary_stream_fps`).
    public func record(rates: [(stream: Int, fps: Double)], cameras: CameraService) {
        exported.withValue { state in
            for (stream, fps) in rates { if let camera = cameras.cameraID(ofSource: stream) { state.fps[camera] = fps } }
        }
    }

    /// The scrape: the counters brought up to the ledger, the gauges set, everything written.
    public func scrape(cameras: CameraService) -> [UInt8] {
        exported.withValue { state in
            if let pipeline = cameras.pipeline { update(&state, pipeline: pipeline, cameras: cameras) }
            if let worker {
                let labels = [("worker_id", worker.workerID)]
                registry.makeGauge(descriptor: Self.workerCameras, labels: labels).set(to: Double(worker.runningCameras))
                add(worker.renewFailures, over: &state.renewFailures, to: Self.renewFailures, labels)
                add(metadataSinks.reduce(0) { $0 + $1.counts.fenced }, over: &state.fenced, to: Self.fenced, labels)
            }
        }
        return registry.emitToBuffer()
    }

    private func update(_ state: inout Exported, pipeline: Pipeline, cameras: CameraService) {
        for id in pipeline.ledger.sourceIDs {
            guard let camera = cameras.cameraID(ofSource: id) else { continue }
            let counts = pipeline.ledger.counts(of: id)
            let labels = [("camera_id", camera)]
            add(counts.decoded, over: &state.decoded[id, default: 0], to: Self.decoded, labels)
            add(counts.delivered, over: &state.delivered[id, default: 0], to: Self.delivered, labels)
            for reason in DropReason.allCases {
                add(counts.dropped[reason.rawValue] ?? 0, over: &state.dropped[id, default: [:]][reason.rawValue, default: 0],
                    to: Self.dropped, labels + [("reason", reason.rawValue)])
            }
            add(counts.lostInDecoder, over: &state.lostInDecoder[id, default: 0], to: Self.dropped, labels + [("reason", "decoder")])
            add(counts.reconnects, over: &state.reconnects[id, default: 0], to: Self.reconnects, labels)
            let gap = registry.makeCounter(descriptor: Self.gap, labels: labels)
            let exportedGap = state.gapNanoseconds[id, default: 0]
            if counts.gapNanoseconds > exportedGap { gap.increment(by: Double(counts.gapNanoseconds - exportedGap) / 1e9) }
            state.gapNanoseconds[id] = max(exportedGap, counts.gapNanoseconds)
        }
        let statuses = pipeline.sourceStatuses
        var present: Set<String> = []
        for status in statuses {
            guard let camera = cameras.cameraID(ofSource: status.sourceID) else { continue }
            present.insert(camera)
            for value in SourceState.allCases {
                registry.makeGauge(descriptor: Self.state, labels: [("camera_id", camera), ("state", value.rawValue)])
                    .set(to: value == status.state ? 1.0 : 0.0)
            }
            registry.makeGauge(descriptor: Self.fps, labels: [("camera_id", camera)]).set(to: state.fps[camera] ?? 0)
        }
        updateAnalytics(&state, pipeline: pipeline, cameras: cameras, present: present)
        if let liveView {
            add(liveView.framesEncoded, over: &state.liveViewFrames, to: Self.liveViewFrames, [])
            registry.makeGauge(descriptor: Self.liveViewers).set(to: Double(liveView.viewerCount))
        }
        for camera in state.gauged.subtracting(present) {
            for value in SourceState.allCases {
                registry.unregisterGauge(registry.makeGauge(descriptor: Self.state, labels: [("camera_id", camera), ("state", value.rawValue)]))
            }
            registry.unregisterGauge(registry.makeGauge(descriptor: Self.fps, labels: [("camera_id", camera)]))
            state.fps[camera] = nil
        }
        state.gauged = present
        registry.makeGauge(descriptor: Self.sources).set(to: Double(statuses.count))
        for sink in metadataSinks {
            let counts = sink.counts, labels = [("sink", sink.name)]
            var done = state.sinks[sink.name, default: MetadataSinkCounts()]
            add(counts.published, over: &done.published, to: Self.meta("published"), labels)
            add(counts.sent, over: &done.sent, to: Self.meta("sent"), labels)
            add(counts.spooled, over: &done.spooled, to: Self.meta("spooled"), labels)
            add(counts.replayed, over: &done.replayed, to: Self.meta("replayed"), labels)
            add(counts.dropped, over: &done.dropped, to: Self.meta("dropped"), labels)
            state.sinks[sink.name] = done
        }
    }

    /// The analytics (`--analytics`): region and overcrowding gauges of each camera's latest
    /// frame, crossing counters; a removed camera's gauges go.
    private func updateAnalytics(_ state: inout Exported, pipeline: Pipeline, cameras: CameraService, present: Set<String>) {
        for (source, results) in pipeline.analyticsResults {
            guard let camera = cameras.cameraID(ofSource: source), present.contains(camera) else { continue }
            var gauged: [(MetricNameDescriptor, String)] = []
            for (region, count) in results.objectsInRegion {
                registry.makeGauge(descriptor: Self.roiObjects, labels: [("camera_id", camera), ("roi", region)]).set(to: Double(count))
                gauged.append((Self.roiObjects, region))
            }
            for (region, over) in results.overcrowded {
                registry.makeGauge(descriptor: Self.overcrowded, labels: [("camera_id", camera), ("roi", region)]).set(to: over ? 1 : 0)
                gauged.append((Self.overcrowded, region))
            }
            state.analyticsGauged[camera] = gauged
            for (line, total) in results.crossingsSoFar {
                add(total, over: &state.crossings[source, default: [:]][line, default: 0], to: Self.crossings, [("camera_id", camera), ("line", line)])
            }
        }
        for camera in Set(state.analyticsGauged.keys).subtracting(present) {
            for (descriptor, region) in state.analyticsGauged[camera] ?? [] {
                registry.unregisterGauge(registry.makeGauge(descriptor: descriptor, labels: [("camera_id", camera), ("roi", region)]))
            }
            state.analyticsGauged[camera] = nil
        }
    }

    /// Raises a counter by what `total` grew since it was last exported.
    private func add(_ total: Int, over exported: inout Int, to descriptor: MetricNameDescriptor, _ labels: [(String, String)]) {
        let counter = registry.makeCounter(descriptor: descriptor, labels: labels)
        if total > exported { counter.increment(by: Int64(total - exported)) }
        exported = max(exported, total)
    }
}

/// swift-metrics into the registry, the pipeline's histograms with their buckets and HELP lines
/// (`PrometheusMetricsFactory` gives every metric an empty HELP, which promtool's lint refuses).
struct HistogramsWithHelp: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let plain: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        plain = PrometheusMetricsFactory(registry: registry)
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: PipelineMetricNames.help[label] ?? label)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = PipelineMetricNames.secondsBuckets.map { Duration.nanoseconds(Int64($0 * 1e9)) }
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return plain.makeRecorder(label: label, dimensions: dimensions, aggregate: false) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: PipelineMetricNames.ratioBuckets)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        plain.makeCounter(label: label, dimensions: dimensions)
    }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        plain.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { plain.makeMeter(label: label, dimensions: dimensions) }
    func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}
