import CGStreamer

/// An RTSP server (gst-rtsp-server) serving one GStreamer launch line at one mount point, with its
/// own GLib main loop on its own thread. Serves the tiled output (`--rtsp-port`) and the tests'
/// live sources, always on an address the caller names (127.0.0.1 in tests).
public final class RTSPServer: @unchecked Sendable {
    public let address: String
    public let mountPath: String
    /// The port actually bound (useful when 0 asked for any free port).
    public let port: Int
    private let server: UnsafeMutablePointer<GstRTSPServer>
    private let context: OpaquePointer
    private let loop: OpaquePointer
    private let sourceID: guint
    private var thread: WorkerThread?

    public var url: String { "rtsp://\(address):\(port)\(mountPath)" }

    /// - Parameter launch: a bin description with payloaders named `pay0`, `pay1`, …
    public init(address: String = "127.0.0.1", port: Int = 0, mountPath: String = "/ds-test", launch: String, shared: Bool = true) throws {
        GStreamer.initialize()
        self.address = address
        self.mountPath = mountPath
        server = gst_rtsp_server_new()
        gst_rtsp_server_set_address(server, address)
        gst_rtsp_server_set_service(server, String(port))
        let factory = gst_rtsp_media_factory_new()!
        gst_rtsp_media_factory_set_launch(factory, launch)
        gst_rtsp_media_factory_set_shared(factory, shared ? 1 : 0)
        let mounts = gst_rtsp_server_get_mount_points(server)!
        gst_rtsp_mount_points_add_factory(mounts, mountPath, factory)  // takes the factory
        g_object_unref(mounts)
        context = g_main_context_new()
        loop = g_main_loop_new(context, 0)
        let id = gst_rtsp_server_attach(server, context)
        guard id != 0 else {
            g_main_loop_unref(loop)
            g_main_context_unref(context)
            g_object_unref(server)
            throw PipelineError.sinkFailed(target: "rtsp://\(address):\(port)\(mountPath)", element: "rtsp-server",
                                           message: "could not listen on \(address):\(port)")
        }
        sourceID = id
        self.port = Int(gst_rtsp_server_get_bound_port(server))
        // The thread holds the loop by address, not `self`, so dropping the server stops it.
        let loopAddress = UInt(bitPattern: loop)
        thread = WorkerThread(name: "rtsp-server") { g_main_loop_run(OpaquePointer(bitPattern: loopAddress)) }
    }

    /// Stops serving and ends the main loop.
    public func stop() {
        guard let thread else { return }
        self.thread = nil
        if let source = g_main_context_find_source_by_id(context, sourceID) { g_source_destroy(source) }
        g_main_loop_quit(loop)
        thread.join()
    }

    deinit {
        stop()
        g_main_loop_unref(loop)
        g_main_context_unref(context)
        g_object_unref(server)
    }
}
