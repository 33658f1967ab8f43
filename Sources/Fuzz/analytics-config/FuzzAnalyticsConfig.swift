import FuzzSupport
import Tributary

// nvdsanalytics' config format (`AnalyticsConfiguration.parse`, over `KeyFile`): any text either
// parses or throws an `InferConfigurationError`; nothing else, no trap. What it accepts, the
// OSD can draw: every point a number of pixels it can make an Int of.

func check(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let (rules, _) = try AnalyticsConfiguration.parse(text, path: "analytics.txt", muxerWidth: 1920, muxerHeight: 1080)
        for stream in rules.values {
            let points = stream.regions.flatMap(\.polygon) + stream.overcrowding.flatMap(\.polygon)
                + stream.lines.flatMap { [$0.from, $0.to, $0.lineStart, $0.lineEnd] } + stream.directions.flatMap { [$0.from, $0.to] }
            precondition(points.allSatisfy { abs($0.x) <= 1e6 && abs($0.y) <= 1e6 }, "a point the OSD cannot draw")
            precondition(stream.overcrowding.allSatisfy { $0.threshold >= 0 })
        }
    } catch is InferConfigurationError {
    } catch {
        fatalError("untyped error: \(error)")
    }
}

@main struct Fuzz {
    static func main() { FuzzSupport.main(check) }
}
