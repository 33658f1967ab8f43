import CGStreamer

/// Process-wide GStreamer set-up and small conveniences over its C API.
public enum GStreamer {
    private static let initialized: Bool = {
        gst_init(nil, nil)
        return true
    }()

    /// Initialises GStreamer once; every entry point that builds elements calls it.
    public static func initialize() { _ = initialized }

    /// `gst_parse_launch`, with the error turned into a Swift error.
    static func parseLaunch(_ description: String) throws -> UnsafeMutablePointer<GstElement> {
        initialize()
        var error: UnsafeMutablePointer<GError>?
        let element = gst_parse_launch(description, &error)
        if let error {
            let message = String(cString: tb_error_message(error))
            g_error_free(error)
            if let element { gst_object_unref(element) }
            throw PipelineError.pipelineConstruction(description: description, message: message)
        }
        guard let element else { throw PipelineError.pipelineConstruction(description: description, message: "no element") }
        return element
    }

    /// A named child of a bin, or nil. The caller owns the returned reference.
    static func child(of bin: UnsafeMutablePointer<GstElement>, named name: String) -> UnsafeMutablePointer<GstElement>? {
        gst_bin_get_by_name(tb_bin(bin), name)
    }

    /// A named child of a bin, or nil, in an owner that drops the reference.
    static func ownedChild(of bin: UnsafeMutablePointer<GstElement>, named name: String) -> GstOwned<GstElement>? {
        child(of: bin, named: name).map(GstOwned.init(taking:))
    }

    /// An element of `factory` at READY, or nil when it is not installed or does not reach READY
    /// on its own: a video sink then has its display open (xvimagesink also needs the X server's
    /// XVideo adaptors). The owner sets it to NULL when it goes.
    static func elementAtReady(_ factory: String) -> GstOwnedPipeline? {
        initialize()
        guard let element = gst_element_factory_make(factory, nil) else { return nil }
        let owned = GstOwnedPipeline(taking: gst_object_ref_sink(element).assumingMemoryBound(to: GstElement.self))
        return gst_element_set_state(element, GST_STATE_READY) != GST_STATE_CHANGE_FAILURE ? owned : nil
    }

    /// Whether an element factory is registered (a plugin is installed).
    public static func hasElement(_ factory: String) -> Bool {
        initialize()
        guard let f = gst_element_factory_find(factory) else { return false }
        gst_object_unref(UnsafeMutableRawPointer(f))
        return true
    }

    /// Whether elements of `factory` take buffers of `caps` (a caps string) on some sink pad.
    static func factory(_ factory: String, accepts caps: String) -> Bool {
        initialize()
        guard let f = gst_element_factory_find(factory) else { return false }
        defer { gst_object_unref(UnsafeMutableRawPointer(f)) }
        guard let parsed = gst_caps_from_string(caps) else { return false }
        defer { gst_caps_unref(parsed) }
        return gst_element_factory_can_sink_any_caps(f, parsed) != 0
    }

    /// The GPU an NVIDIA element factory works on, nil for other factories. nvcodec registers one
    /// factory per GPU (`nvh264dec` for the first, `nvh264device1dec` for the next, …) and says
    /// which GPU in its elements' `cuda-device-id`; learnt once per factory from one element.
    static func cudaDeviceID(ofFactory name: String) -> Int? {
        guard name.hasPrefix("nv") else { return nil }
        if let known = factoryDevices.withValue({ $0[name] }) { return known }
        var device: Int?
        if let element = gst_element_factory_make(name, nil) {
            gst_object_ref_sink(element)
            let id = tb_object_get_integer(element, "cuda-device-id")
            if id >= 0 { device = Int(id) }
            gst_object_unref(element)
        }
        factoryDevices.withValue { $0[name] = .some(device) }
        return device
    }
    private static let factoryDevices = Locked<[String: Int?]>([:])

    /// The registered factory of NVIDIA's element `name` (as nvcodec names it for the first GPU,
    /// e.g. `nvh264enc`) that works on GPU `device`: `name` itself or its `…deviceN…` sibling.
    static func nvidiaFactory(_ name: String, device: Int) -> String? {
        initialize()
        guard name.hasSuffix("dec") || name.hasSuffix("enc") else { return nil }
        let (stem, kind) = (name.dropLast(3), name.suffix(3))
        let candidates = [name] + (1..<16).map { "\(stem)device\($0)\(kind)" }
        return candidates.first { hasElement($0) && cudaDeviceID(ofFactory: $0) == device }
    }

    /// The element name and message of an error or warning message.
    package static func describe(_ message: UnsafeMutablePointer<GstMessage>) -> (element: String, text: String, debug: String?) {
        var error: UnsafeMutablePointer<GError>?
        var debug: UnsafeMutablePointer<gchar>?
        switch tb_message_type(message) {
        case GST_MESSAGE_ERROR: gst_message_parse_error(message, &error, &debug)
        case GST_MESSAGE_WARNING: gst_message_parse_warning(message, &error, &debug)
        default: break
        }
        let element = String(cString: tb_object_name(tb_message_source(message)))
        let text = String(cString: tb_error_message(error))
        let debugText = debug.map { String(cString: $0) }
        if let error { g_error_free(error) }
        if let debug { g_free(debug) }
        return (element, text, debugText)
    }

    /// An error already posted on an element's bus, as "element: message", if there is one.
    static func pendingError(_ pipeline: UnsafeMutablePointer<GstElement>) -> String? {
        guard let bus = gst_element_get_bus(pipeline) else { return nil }
        defer { gst_object_unref(bus) }
        guard let message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) else { return nil }
        defer { gst_message_unref(message) }
        let d = describe(message)
        return "\(d.element): \(d.text)"
    }

    /// Waits up to `timeoutNanoseconds` for end-of-stream or an error on an element's bus.
    /// Returns the error text, if an error came.
    @discardableResult
    static func waitForEndOfStream(_ element: UnsafeMutablePointer<GstElement>, timeoutNanoseconds: UInt64) -> String? {
        guard let bus = gst_element_get_bus(element) else { return nil }
        defer { gst_object_unref(bus) }
        let types = GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue)
        guard let message = gst_bus_timed_pop_filtered(bus, GstClockTime(timeoutNanoseconds), types) else {
            return "timed out waiting for end-of-stream"
        }
        defer { gst_message_unref(message) }
        if tb_message_type(message) == GST_MESSAGE_ERROR {
            let d = describe(message)
            return "\(d.element): \(d.text)"
        }
        return nil
    }
}

/// One reference to a GStreamer object (element, bus, …), dropped exactly once, when the owner
/// goes — the gstreamer-rs way: an init that throws half-way and the deinit that may follow it
/// (Swift runs it once every stored property is set) cannot both release it.
final class GstOwned<Object>: @unchecked Sendable {  // GStreamer's reference counts are atomic
    let pointer: UnsafeMutablePointer<Object>

    /// Takes over a reference the caller owns (a "transfer full" return).
    init(taking pointer: UnsafeMutablePointer<Object>) { self.pointer = pointer }

    deinit { gst_object_unref(pointer) }
}

/// A top-level pipeline (or a lone element), set to NULL (streaming threads joined, files and
/// displays closed) before its reference goes.
final class GstOwnedPipeline: @unchecked Sendable {
    let element: UnsafeMutablePointer<GstElement>

    init(taking element: UnsafeMutablePointer<GstElement>) { self.element = element }

    /// `gst_parse_launch` of `description`, owned.
    convenience init(launch description: String) throws {
        self.init(taking: try GStreamer.parseLaunch(description))
    }

    /// Sets the pipeline to NULL; harmless when it already is.
    func stop() { gst_element_set_state(element, GST_STATE_NULL) }

    deinit {
        stop()
        gst_object_unref(element)
    }
}

/// A buffer pool, deactivated (its free buffers released) before its reference goes.
final class GstOwnedBufferPool: @unchecked Sendable {
    let pool: UnsafeMutablePointer<GstBufferPool>

    init(taking pool: UnsafeMutablePointer<GstBufferPool>) { self.pool = pool }

    deinit {
        gst_buffer_pool_set_active(pool, 0)  // a no-op on a pool never activated
        gst_object_unref(pool)
    }
}

/// Errors of building and running pipelines; each names the input it concerns.
public enum PipelineError: Error, CustomStringConvertible, Sendable {
    case pipelineConstruction(description: String, message: String)
    case invalidURI(String, reason: String)
    case unsupportedScheme(uri: String, scheme: String)
    case fileNotFound(uri: String, path: String)
    case sourceFailed(uri: String, element: String, message: String)
    case sinkFailed(target: String, element: String, message: String)
    /// What the user gave is not usable (a value, a path, a folder that exists): exit 2.
    case invalidArgument(String)
    /// The machine or the run failed at `what` (a system call, a child process, the decoder's
    /// output, a run of the benchmark), not what the user gave: exit 1.
    case failed(what: String, message: String)

    public var description: String {
        switch self {
        case .pipelineConstruction(let d, let m): return "could not build pipeline '\(d)': \(m)"
        case .invalidURI(let u, let r): return "invalid URI '\(u)': \(r)"
        case .unsupportedScheme(let u, let s): return "unsupported URI scheme '\(s)' in '\(u)' (GStreamer has no source for it)"
        case .fileNotFound(let u, let p): return "no such file '\(p)' (from '\(u)')"
        case .sourceFailed(let u, let e, let m): return "\(e): \(m) (source \(u))"
        case .sinkFailed(let t, let e, let m): return "\(e): \(m) (output \(t))"
        case .invalidArgument(let m): return m
        case .failed(let what, let m): return "\(what): \(m)"
        }
    }
}
