import FuzzSupport
import Tributary

// What `-i` and a REST `camera_url` become (`SourceURI`, over GStreamer's URI functions): any
// string is a URI with a supported scheme or a `PipelineError`; nothing else, no trap.

func check(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let uri = try SourceURI(text)
        precondition(!uri.uri.isEmpty && !uri.scheme.isEmpty && uri.scheme == uri.scheme.lowercased())
        // GStreamer sees a C string: what follows a NUL was never checked.
        precondition(!uri.uri.utf8.contains(0), "a URI with a NUL in it")
    } catch is PipelineError {
    } catch {
        fatalError("untyped error: \(error)")
    }
}

@main struct Fuzz {
    static func main() { FuzzSupport.main(check) }
}
