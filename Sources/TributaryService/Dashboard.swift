import FoundationEssentials
import Hummingbird
import Tributary

/// Each camera's objects by label on its latest frame, for the dashboard: a stage after the
/// probe, read from the server's threads.
final class LatestObjectCounts: BatchStage, @unchecked Sendable {
    private let latest = Locked([Int: [String: Int]]())

    func process(_ batch: inout FrameBatch) throws {
        var counts: [(source: Int, labels: [String: Int])] = []
        for frame in batch.meta.frames {
            var labels: [String: Int] = [:]
            for object in frame.objects { labels[object.label, default: 0] += 1 }
            counts.append((frame.sourceID, labels))
        }
        latest.withValue { for entry in counts { $0[entry.source] = entry.labels } }
    }

    /// The counts of the sources in `present`; those of sources gone are dropped.
    func counts(present: Set<Int>) -> [Int: [String: Int]] {
        latest.withValue { latest in
            latest = latest.filter { present.contains($0.key) }
            return latest
        }
    }
}

/// The browser dashboard: `GET /` (one self-contained page), `GET /api/v1/events` (the cameras'
/// table as Server-Sent Events, once a second) and `GET /api/v1/view.mjpeg[?camera=ID]` (the
/// live view as MJPEG, `multipart/x-mixed-replace`).
enum Dashboard {
    struct Snapshot: Encodable {
        /// `get-stream-info`'s cameras with the dashboard's fields (fps, objects, analytics).
        var cameras: [ServiceRoutes.StreamInfoBody.Stream]
        var viewers: Int
    }

    /// What each Server-Sent Events connection keeps between two snapshots (to give frame rates).
    struct Rates {
        var delivered: [String: (count: Int, at: MonotonicInstant)] = [:]

        mutating func fps(of camera: String, delivered count: Int, now: MonotonicInstant) -> Double {
            defer { delivered[camera] = (count, now) }
            guard let last = delivered[camera], now > last.at, count >= last.count else { return 0 }
            return Double(count - last.count) / (Double(now.nanoseconds(since: last.at)) / 1e9)
        }
    }

    static func snapshot(cameras: CameraService, counts: LatestObjectCounts, liveView: LiveView, rates: inout Rates) -> Snapshot {
        let infos = cameras.streamInfo()
        let objects = counts.counts(present: Set(infos.map(\.camera.sourceID)))
        let analytics = cameras.pipeline?.analyticsResults ?? [:]
        let now = MonotonicClock().now()
        return Snapshot(cameras: infos.map { info in
            let id = info.camera.cameraID
            var lines: [String] = []
            if let results = analytics[info.camera.sourceID] {
                lines += results.objectsInRegion.sorted { $0.key < $1.key }.map { "ROI \($0.key): \($0.value)" }
                lines += results.overcrowded.sorted { $0.key < $1.key }.map { "Crowd \($0.key): \($0.value ? "over" : "ok")" }
                lines += results.crossingsSoFar.sorted { $0.key < $1.key }.map { "Line \($0.key): \($0.value)" }
            }
            var camera = ServiceRoutes.stream(info)
            camera.metadata = nil
            camera.fps = (rates.fps(of: id, delivered: info.counts.delivered, now: now) * 10).rounded() / 10
            camera.objects = objects[info.camera.sourceID] ?? [:]
            camera.analytics = lines
            return camera
        }, viewers: liveView.viewerCount)
    }

    static func routes(_ router: Router<BasicRequestContext>, cameras: CameraService, counts: LatestObjectCounts, liveView: LiveView) {
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        router.get("/api/v1/events") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: .init { writer in
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                var rates = Rates()
                // Until the client goes (a write fails) or the service stops.
                while cameras.phase != .stopping {
                    let data = try encoder.encode(snapshot(cameras: cameras, counts: counts, liveView: liveView, rates: &rates))
                    var event = ByteBuffer(string: "data: ")
                    event.writeBytes(data)
                    event.writeString("\n\n")
                    try await writer.write(event)
                    try await Task.sleep(nanoseconds: 1_000_000_000)
                }
                try await writer.finish(nil)
            })
        }
        router.get("/api/v1/view.mjpeg") { request, _ in
            let camera = request.uri.queryParameters.get("camera")
            if let camera, cameras.sourceID(ofCamera: camera) == nil {
                return ServiceRoutes.json(404, ServiceRoutes.ChangeResult(status: "FAIL", reason: "no camera \(camera)"))
            }
            let frames = liveView.frames(camera: camera)
            return Response(status: .ok, headers: [.contentType: "multipart/x-mixed-replace; boundary=\(boundary)", .cacheControl: "no-store"],
                            body: .init { writer in
                for await jpeg in frames {
                    var part = ByteBuffer(string: "--\(boundary)\r\nContent-Type: image/jpeg\r\nContent-Length: \(jpeg.count)\r\n\r\n")
                    part.writeBytes(jpeg)
                    part.writeString("\r\n")
                    try await writer.write(part)
                }
                try await writer.finish(nil)
            })
        }
    }

    static let boundary = "tributaryframe"

    /// The page: no framework, no CDN; every camera name and error is set as text, never as HTML.
    static let page = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Tributary</title>
        <style>
          body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
          header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1em; background: #1c1c1c; }
          h1 { font-size: 1.2em; margin: 0; } h2 { font-size: 1em; margin: .4em 0; }
          main { padding: 0 1em 1em; }
          section { overflow-x: auto; margin-top: .6em; }
          #live { width: 100%; max-width: 1280px; background: #000; min-height: 120px; display: block; }
          table { border-collapse: collapse; width: 100%; }
          th, td { text-align: left; padding: .3em .5em; border-bottom: 1px solid #333; font-size: 13px; }
          tbody tr { cursor: pointer; } tbody tr:hover { background: #222; }
          tr.streaming td:nth-child(3) { color: #6c6; } tr.failed td:nth-child(3), tr.stalled td:nth-child(3) { color: #e66; }
          tr.backing-off td:nth-child(3), tr.connecting td:nth-child(3) { color: #ec6; }
          form { display: flex; flex-wrap: wrap; gap: .4em; margin-top: 1em; }
          input { background: #222; color: #eee; border: 1px solid #444; padding: .3em; }
          input[name=url] { flex: 1 1 20em; }
          button { background: #2a5; color: #fff; border: 0; padding: .3em .8em; cursor: pointer; }
          button.remove { background: #a33; }
          #message { color: #aaa; min-height: 1.4em; }
        </style>
        </head>
        <body>
        <header><h1>Tributary</h1><span id="status">connecting…</span></header>
        <main>
          <section>
            <h2><span id="view-title">All cameras</span> <button id="back" hidden>All cameras</button></h2>
            <img id="live" alt="live view" src="/api/v1/view.mjpeg">
          </section>
          <section>
            <table id="cameras">
              <thead><tr><th>Camera</th><th>Name</th><th>State</th><th>FPS</th><th>Frames</th><th>Dropped</th><th>Reconnects</th><th>Objects</th><th>Analytics</th><th></th></tr></thead>
              <tbody></tbody>
            </table>
            <form id="add">
              <input name="url" placeholder="rtsp://… or file:///…" required>
              <input name="id" placeholder="camera id" required size="10">
              <input name="name" placeholder="name" size="12">
              <button type="submit">Add camera</button>
            </form>
            <p id="message"></p>
          </section>
        </main>
        <script>
        "use strict";
        const rows = document.querySelector("#cameras tbody");
        const live = document.getElementById("live"), title = document.getElementById("view-title");
        const back = document.getElementById("back"), message = document.getElementById("message");
        const form = document.getElementById("add"), status = document.getElementById("status");
        function cell(row, text) {
          const td = document.createElement("td");
          td.textContent = text;  // text, never HTML: a camera named <script> shows as written
          row.appendChild(td);
          return td;
        }
        function render(snapshot) {
          rows.replaceChildren(...snapshot.cameras.map(c => {
            const tr = document.createElement("tr");
            tr.className = c.state;
            tr.dataset.camera = c.camera_id;
            cell(tr, c.camera_id); cell(tr, c.camera_name);
            cell(tr, c.state + (c.last_error ? ": " + c.last_error : ""));
            cell(tr, c.fps.toFixed(1)); cell(tr, String(c.frames_delivered)); cell(tr, String(c.frames_dropped));
            cell(tr, String(c.reconnects));
            cell(tr, Object.entries(c.objects).map(([label, n]) => label + " " + n).join(", "));
            cell(tr, c.analytics.join(", "));
            const remove = document.createElement("button");
            remove.textContent = "Remove";
            remove.className = "remove";
            remove.onclick = event => { event.stopPropagation(); change("remove", {camera_id: c.camera_id, camera_url: c.camera_url}); };
            cell(tr, "").appendChild(remove);
            tr.onclick = () => watch(c.camera_id);
            return tr;
          }));
        }
        function watch(camera) {
          live.src = "/api/v1/view.mjpeg" + (camera ? "?camera=" + encodeURIComponent(camera) : "");
          title.textContent = camera ? "Camera " + camera : "All cameras";
          back.hidden = !camera;
        }
        back.onclick = () => watch(null);
        async function change(kind, value) {
          const body = {key: "sensor", value: Object.assign({change: "camera_" + kind}, value), headers: {source: "dashboard"}};
          try {
            const answer = await fetch("/api/v1/stream/" + kind, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
            const result = await answer.json();
            message.textContent = result.status + ": " + result.reason;
          } catch (error) {
            message.textContent = String(error);
          }
        }
        form.onsubmit = event => {
          event.preventDefault();
          change("add", {camera_id: form.elements.id.value, camera_name: form.elements.name.value, camera_url: form.elements.url.value});
        };
        const events = new EventSource("/api/v1/events");
        events.onmessage = event => { render(JSON.parse(event.data)); status.textContent = "live"; };
        events.onerror = () => { status.textContent = "disconnected, retrying…"; };
        </script>
        </body>
        </html>
        """#
}
