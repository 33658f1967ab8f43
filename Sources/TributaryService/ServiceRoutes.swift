import FoundationEssentials
import Hummingbird
import Tributary

/// DeepStream's REST paths and bodies (nvmultiurisrcbin's server), the Kubernetes probes,
/// `/metrics` and the dashboard (`Dashboard`), over `CameraService` and `MetricsExporter`. Every
/// answer is JSON (but the metrics and the dashboard's); bodies are limited; a bad request never
/// stops the server.
public enum ServiceRoutes {
    /// Request bodies above this are refused (413) without being read further.
    public static let maximumBodyBytes = 64 * 1024

    /// - Parameter worker: `tributary worker`: add and remove change the shared registry, and
    ///   `get-stream-info` says under which lease each camera runs here.
    static func router(cameras: CameraService, metrics: MetricsExporter, liveView: LiveView, objectCounts: LatestObjectCounts,
                       worker: ClusterWorker? = nil) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(JSONErrors())
        Dashboard.routes(router, cameras: cameras, counts: objectCounts, liveView: liveView)
        router.post("/api/v1/stream/add") { request, _ in
            await change(request, .add, cameras: cameras, worker: worker)
        }
        router.post("/api/v1/stream/remove") { request, _ in
            await change(request, .remove, cameras: cameras, worker: worker)
        }
        router.get("/api/v1/stream/get-stream-info") { _, _ in
            streamInfo(cameras, worker: worker)
        }
        router.get("/api/v1/live") { _, _ in json(200, ["status": "LIVE"]) }
        router.get("/api/v1/startup") { _, _ in
            cameras.phase == .starting ? json(503, ["status": "STARTING"]) : json(200, ["status": "STARTED"])
        }
        router.get("/api/v1/ready") { _, _ in
            // A worker without Redis runs nothing: not ready.
            cameras.phase == .running && worker?.redisReachable != false ? json(200, ["status": "READY"]) : json(503, ["status": "NOT_READY"])
        }
        router.get("/api/v1/health/get-dsready-state") { _, _ in
            let ready = cameras.phase == .running
            return json(200, HealthInfo(health_info: ["ds-ready": ready ? "YES" : "NO"], reason: "GET_DS_READINESS_INFO_SUCCESS"))
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.scrape(cameras: cameras))))
        }
        return router
    }

    struct ChangeResult: Encodable { var status: String; var reason: String }
    struct HealthInfo: Encodable {
        var health_info: [String: String]
        var reason: String
        enum CodingKeys: String, CodingKey { case health_info = "health-info", reason }
    }

    /// `stream/add` or `stream/remove`: `{"status":"STREAM_ADD_SUCCESS"|…_FAIL,"reason":…}`.
    static func change(_ request: Request, _ kind: StreamChange.Kind, cameras: CameraService, worker: ClusterWorker? = nil) async -> Response {
        var request = request
        let verb = kind == .add ? "ADD" : "REMOVE"
        func failed(_ status: Int, _ reason: String) -> Response {
            json(status, ChangeResult(status: "STREAM_\(verb)_FAIL", reason: reason))
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maximumBodyBytes)
        } catch {
            return failed(413, "the body is over \(maximumBodyBytes / 1024) KiB")
        }
        do {
            let change = try StreamChange(json: Array(buffer: body), expected: kind)
            if let worker {
                let endpoint = worker.configuration.endpoint
                let reason = try await onThread { Result { try CameraRegistry.change(change, at: endpoint) } }.get()
                return json(200, ChangeResult(status: "STREAM_\(verb)_SUCCESS", reason: reason))
            }
            let camera = kind == .add ? try cameras.add(change) : try cameras.remove(change)
            let done = kind == .add ? "added as source \(camera.sourceID)" : "removed (source \(camera.sourceID))"
            return json(200, ChangeResult(status: "STREAM_\(verb)_SUCCESS", reason: "camera \(camera.cameraID) \(done)"))
        } catch let error as StreamRequestError {
            return failed(error.status, error.description)
        } catch {
            return failed(500, "\(error)")
        }
    }

    struct StreamInfoBody: Encodable {
        struct Stream: Encodable {
            var camera_id: String
            var camera_name: String
            var camera_url: String
            var source_id: Int
            var state: String
            var reconnects: Int
            var frames_decoded: Int
            var frames_delivered: Int
            var frames_dropped: Int
            var last_error: String?
            var metadata: JSONValue?
            /// `tributary worker`: the lease it runs under, since when, why, and the gap since its
            /// previous owner's last message.
            var lease_worker: String?
            var lease_epoch: Int?
            var owned_since_ms: Int?
            var lease_reason: String?
            var handover_gap_ms: Int?
            /// The dashboard's (`/api/v1/events`): frames a second since its last update, objects
            /// by label and the analytics on the latest frame. Left out of `get-stream-info`.
            var fps: Double?
            var objects: [String: Int]?
            var analytics: [String]?
        }
        struct Info: Encodable {
            var stream_count: Int
            var stream_info: [Stream]
            enum CodingKeys: String, CodingKey { case stream_count = "stream-count", stream_info = "stream-info" }
        }
        var stream_info: Info
        var reason: String
        enum CodingKeys: String, CodingKey { case stream_info = "stream-info", reason }
    }

    /// A camera as `get-stream-info` (and the dashboard) shows it.
    static func stream(_ info: CameraService.StreamInfo) -> StreamInfoBody.Stream {
        StreamInfoBody.Stream(camera_id: info.camera.cameraID, camera_name: info.camera.cameraName ?? "",
                              camera_url: info.camera.cameraURL, source_id: info.camera.sourceID,
                              state: info.status?.state.rawValue ?? SourceState.connecting.rawValue,
                              reconnects: info.status?.reconnects ?? 0, frames_decoded: info.counts.decoded,
                              frames_delivered: info.counts.delivered, frames_dropped: info.counts.droppedTotal,
                              last_error: info.status?.lastError, metadata: info.camera.metadata)
    }

    static func streamInfo(_ cameras: CameraService, worker: ClusterWorker? = nil) -> Response {
        // A worker lists what it runs under a lease within its deadline (a process resumed after a
        // freeze answers before its watchdog has stopped what it no longer holds).
        let streams = cameras.streamInfo().filter { worker?.fence.holds(camera: $0.camera.cameraID) ?? true }.map { info in
            var stream = stream(info)
            if let lease = worker?.lease(ofCamera: info.camera.cameraID) {
                stream.lease_worker = lease.token.worker
                stream.lease_epoch = lease.token.epoch
                stream.owned_since_ms = lease.sinceUnixMilliseconds
                stream.lease_reason = lease.reason
                stream.handover_gap_ms = lease.handoverGapMilliseconds
            }
            return stream
        }
        return json(200, StreamInfoBody(stream_info: .init(stream_count: streams.count, stream_info: streams),
                                        reason: "GET_LIVE_STREAM_INFO_SUCCESS"))
    }

    static func json(_ status: Int, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes = (try? encoder.encode(value)).map { Array($0) } ?? Array("{}".utf8)
        return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// Errors the router itself answers (no such path, a wrong method) as JSON too.
struct JSONErrors: RouterMiddleware {
    func handle(_ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let reason = error.body ?? (error.status == .notFound ? "no such path: \(request.uri.path)" : "\(error.status)")
            return ServiceRoutes.json(Int(error.status.code), ServiceRoutes.ChangeResult(status: "FAIL", reason: reason))
        }
    }
}
