import CGStreamer
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An input as the user named it and as GStreamer will open it.
public struct SourceURI: Sendable, Equatable, CustomStringConvertible {
    /// What the user typed.
    public let original: String
    /// A full URI (`file:///…`, `rtsp://…`, …).
    public let uri: String
    public let scheme: String

    /// Accepts URIs and bare paths (made absolute `file://` URIs). Checks that GStreamer has a
    /// source for the scheme and, for files, that the file exists, so a typo fails at once.
    public init(_ text: String) throws {
        // An empty path would become the working directory ("… is a directory"): say what it is.
        guard !text.allSatisfy(\.isWhitespace) else { throw PipelineError.invalidURI(text, reason: "the URI is empty") }
        // GStreamer reads a C string: past a NUL (a REST camera_url can hold one) nothing would be
        // checked, and what is opened would not be what is shown.
        guard !text.utf8.contains(0) else { throw PipelineError.invalidURI(text, reason: "it contains a NUL character") }
        GStreamer.initialize()
        original = text
        if gst_uri_is_valid(text) != 0 {
            uri = text
        } else {
            var error: UnsafeMutablePointer<GError>?
            guard let converted = gst_filename_to_uri(text, &error) else {
                let message = String(cString: tb_error_message(error))
                if let error { g_error_free(error) }
                throw PipelineError.invalidURI(text, reason: message)
            }
            uri = String(cString: converted)
            g_free(converted)
        }
        guard let protocolName = gst_uri_get_protocol(uri) else { throw PipelineError.invalidURI(text, reason: "no scheme") }
        scheme = String(cString: protocolName).lowercased()
        g_free(protocolName)
        guard gst_uri_protocol_is_supported(GST_URI_SRC, scheme) != 0 else {
            throw PipelineError.unsupportedScheme(uri: text, scheme: scheme)
        }
        if scheme == "file" {
            var error: UnsafeMutablePointer<GError>?
            guard let path = gst_filename_from_uri_wrapper(uri, &error) else {
                if let error { g_error_free(error) }
                throw PipelineError.invalidURI(text, reason: "not a local file URI")
            }
            if access(path, R_OK) != 0 { throw PipelineError.fileNotFound(uri: text, path: path) }
        }
    }

    /// Network streams that play in real time; nvstreammux's `live-source`.
    public var isLiveByScheme: Bool { scheme.hasPrefix("rtsp") || scheme == "udp" || scheme == "srt" }

    public var description: String { uri }
}

private func gst_filename_from_uri_wrapper(_ uri: String, _ error: UnsafeMutablePointer<UnsafeMutablePointer<GError>?>) -> String? {
    guard let path = g_filename_from_uri(uri, nil, error) else { return nil }
    defer { g_free(path) }
    return String(cString: path)
}
