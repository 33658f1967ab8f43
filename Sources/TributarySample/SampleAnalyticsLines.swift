import Tributary

/// The lines `deepstream-nvdsanalytics-test` prints for a frame's analytics, Python-dict style:
/// `Objs in ROI: {'RF': 2}`, `Linecrossing Cumulative: {'Entry': 5}`, `Linecrossing Current
/// Frame: {'Entry': 1}`, `Overcrowding status: {'OC': False}`.
public enum SampleAnalyticsLines {
    public static func lines(_ analytics: FrameAnalytics, objects: [ObjectMeta], source: Int) -> [String] {
        var current: [String: Int] = [:]
        for object in objects { for line in object.analytics?.linesCrossed ?? [] { current[line, default: 0] += 1 } }
        return ["Analytics of stream \(source):",
                "Objs in ROI: \(dict(analytics.objectsInRegion) { "\($0)" })",
                "Linecrossing Cumulative: \(dict(analytics.crossingsSoFar) { "\($0)" })",
                "Linecrossing Current Frame: \(dict(current) { "\($0)" })",
                "Overcrowding status: \(dict(analytics.overcrowded) { $0 ? "True" : "False" })"]
    }

    private static func dict<V>(_ values: [String: V], _ show: (V) -> String) -> String {
        "{" + values.keys.sorted().map { "'\($0)': \(show(values[$0]!))" }.joined(separator: ", ") + "}"
    }
}
