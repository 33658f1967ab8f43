import FoundationEssentials
import FuzzSupport
import TributaryService

// The bodies of `POST /api/v1/stream/add` and `/remove` (`StreamChange(json:expected:)`): any bytes
// are a change or a `StreamRequestError` (400); nothing else, no trap. What is accepted must also
// encode again, as `get-stream-info` shows it.

func check(_ bytes: [UInt8]) {
    for kind in [StreamChange.Kind.add, .remove] {
        do {
            let change = try StreamChange(json: bytes, expected: kind)
            precondition(!change.cameraID.isEmpty && (kind == .remove || change.cameraURL != nil))
            if let metadata = change.metadata {
                do { _ = try JSONEncoder().encode(metadata) } catch { fatalError("accepted metadata does not encode: \(error)") }
            }
        } catch let error as StreamRequestError {
            precondition(error.status == 400)
        } catch {
            fatalError("untyped error: \(error)")
        }
    }
}

@main struct Fuzz {
    static func main() { FuzzSupport.main(check) }
}
