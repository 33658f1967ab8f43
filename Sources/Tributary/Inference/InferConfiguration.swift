#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A detector's settings, read from a DeepStream nvinfer config file (GKeyFile-style INI), so
/// existing nvinfer configs work unchanged. Keys nvinfer knows but Tributary has no use for are
/// accepted silently; unknown keys and groups only warn, as nvinfer does.
public struct InferConfiguration: Sendable, Equatable {
    /// The config file as given.
    public var path: String
    /// `gpu-id`.
    public var gpuID: Int = 0
    /// `net-scale-factor`: pixel = net-scale-factor * (x - offset).
    public var netScaleFactor: Float = 1
    /// `offsets`, per channel: empty (all 0), one value (every channel) or three.
    public var offsets: [Float] = []
    public enum ColorFormat: Int, Sendable { case rgb = 0, bgr = 1, gray = 2 }
    /// `model-color-format`.
    public var modelColorFormat: ColorFormat = .rgb
    /// `onnx-file`, resolved against the config's folder.
    public var onnxFile: String?
    /// Our key `int8-onnx-file` (resolved), used when `network-mode=1`.
    public var int8OnnxFile: String?
    /// `labelfile-path`, resolved.
    public var labelfilePath: String?
    /// The labels of `labelfilePath`, index = class id.
    public var labels: [String] = []
    /// `batch-size`.
    public var batchSize: Int = 1
    /// `process-mode`: 1 primary (the only mode Tributary runs).
    public var processMode: Int = 1
    /// `network-mode`: 0 FP32, 1 INT8, 2 FP16.
    public var networkMode: Int = 0
    /// `num-detected-classes`; the label count when the file leaves it out or at 0.
    public var numDetectedClasses: Int = 0
    /// `interval`: batches skipped between inferences.
    public var interval: Int = 0
    /// `gie-unique-id`.
    public var gieUniqueID: Int = 1
    /// `maintain-aspect-ratio`.
    public var maintainAspectRatio: Bool = false
    /// `symmetric-padding`.
    public var symmetricPadding: Bool = false
    /// `cluster-mode`: only NMS (2) and none (4).
    public var clusterMode: ClusterMode = .nms
    /// Our key `output-parser`.
    public var outputParser: OutputParserKind = .yolo
    /// Our key `execution-provider`.
    public var executionProvider: ExecutionProvider = .cpu
    /// Our key `intra-op-threads`; 0 leaves ONNX Runtime's default.
    public var intraOpThreads: Int = 0
    /// `[class-attrs-all]`.
    public var defaultClassAttributes = ClassAttributes()
    /// `[class-attrs-<id>]`, each starting from `[class-attrs-all]`.
    public var classAttributes: [Int: ClassAttributes] = [:]
    /// Our group `[tracker]` (nvtracker's settings by name: `tracker-type=iou|sort`, `max-age`,
    /// `min-hits`, `iou-threshold`, `class-agnostic`); nil without it.
    public var tracker: TrackerConfiguration?
    /// Non-fatal problems, each "<file>:<line>: …", in line order.
    public var warnings: [String] = []

    public init(path: String) {
        self.path = path
    }

    /// The attributes for a class: its own group, else `[class-attrs-all]`.
    public func attributes(forClass id: Int) -> ClassAttributes {
        classAttributes[id] ?? defaultClassAttributes
    }

    /// Reads and parses a config file (see `parse(text:path:)`).
    public static func load(path: String) throws -> InferConfiguration {
        let text: String
        switch readTextFile(path) {
        case .success(let t): text = t
        case .failure(let e): throw InferConfigurationError(path: path, message: "cannot read config file: \(e.text)")
        }
        return try parse(text: text, path: path)
    }

    /// Parses config text. `path` names the file in messages and is the base for relative
    /// paths. Checks the model file exists and loads the labels, so a bad config fails here,
    /// before any pipeline is built.
    public static func parse(text: String, path: String) throws -> InferConfiguration {
        var parser = InferConfigurationParser(path: path)
        return try parser.parse(text)
    }
}

/// ONNX Runtime execution provider (our `execution-provider` key).
public enum ExecutionProvider: String, Sendable, Equatable { case cpu = "CPU", cuda = "CUDA" }

/// A config the detector cannot run; names the file and, where known, the line and key.
public struct InferConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    public var line: Int?
    public var key: String?
    public var message: String

    public init(path: String, line: Int? = nil, key: String? = nil, message: String) {
        self.path = path
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = path
        if let line { location += ":\(line)" }
        if let key { return "\(location): bad value for '\(key)': \(message)" }
        return "\(location): \(message)"
    }
}

extension InferConfiguration {
    /// nvinfer-sample behaviour: batch-size is forced to the number of sources.
    /// Returns the sample's warning text when it changes anything.
    @discardableResult
    public mutating func overrideBatchSize(sourceCount: Int) -> String? {
        guard batchSize != sourceCount else { return nil }
        // Spacing copied from the Python sample's print(), which users grep for.
        let message = "WARNING: Overriding infer-config batch-size \(batchSize)  with number of sources  \(sourceCount)"
        batchSize = sourceCount
        return message
    }
}

// MARK: - Parsing

/// One `key=value` line.
/// nvinfer `[property]` keys that have no effect in Tributary (TensorRT, custom parsers,
/// secondary mode): accepted without a warning so stock configs load quietly.
private let ignoredPropertyKeys: Set<String> = [
    "model-file", "proto-file", "model-engine-file", "int8-calib-file", "uff-file",
    "tlt-encoded-model", "tlt-model-key", "force-implicit-batch-dim", "output-blob-names",
    "input-blob-name", "uff-input-blob-name", "uff-input-dims", "infer-dims", "output-tensor-meta",
    "parse-bbox-func-name", "custom-lib-path", "engine-create-func-name", "workspace-size",
    "scaling-filter", "scaling-compute-hw", "operate-on-gie-id", "operate-on-class-ids",
    "classifier-threshold", "network-type", "filter-out-class-ids", "crop-objects-to-roi-boundary",
]

/// nvinfer class-attribute keys of clustering modes and ROI filters Tributary does not run.
private let ignoredClassKeys: Set<String> = [
    "eps", "group-threshold", "minBoxes", "dbscan-min-score", "roi-top-offset", "roi-bottom-offset",
]

private struct InferConfigurationParser {
    let path: String
    var config: InferConfiguration
    /// (line, text) so warnings can be put in file order at the end.
    var warnings: [(line: Int, text: String)] = []
    var lines: [String: Int] = [:]

    init(path: String) {
        self.path = path
        config = InferConfiguration(path: path)
    }

    mutating func parse(_ text: String) throws -> InferConfiguration {
        let groups = try tokenize(text)
        guard let property = groups.first(where: { $0.name == "property" }) else {
            throw InferConfigurationError(path: path, message: "no [property] group")
        }
        var classGroups: [(id: Int, group: ConfigGroup)] = []
        var allGroup: ConfigGroup?
        for group in groups {
            if group.name == "property" { continue }
            if group.name == "tracker" {
                var tracker = TrackerConfiguration()
                for entry in group.entries { try applyTrackerSetting(entry, to: &tracker) }
                config.tracker = tracker
                continue
            }
            if group.name == "class-attrs-all" { allGroup = group; continue }
            if group.name.hasPrefix("class-attrs-"), let id = Int(group.name.dropFirst("class-attrs-".count)), id >= 0 {
                classGroups.append((id, group))
                continue
            }
            warn(group.line, "unknown group [\(group.name)] (ignored)")
        }

        for entry in property.entries { try applyProperty(entry) }
        // [class-attrs-all] first so every class group starts from it, whatever the file order.
        if let allGroup {
            var attributes = ClassAttributes()
            for entry in allGroup.entries { try applyClassAttribute(entry, group: allGroup.name, to: &attributes) }
            config.defaultClassAttributes = attributes
        }
        for (id, group) in classGroups {
            var attributes = config.defaultClassAttributes
            for entry in group.entries { try applyClassAttribute(entry, group: group.name, to: &attributes) }
            config.classAttributes[id] = attributes
        }

        try checkFiles()
        try settleClassCount(classGroups: classGroups)

        config.warnings = warnings.enumerated()
            .sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
            .map { "\(path):\($0.element.line): \($0.element.text)" }
        return config
    }

    // MARK: Lines and groups

    mutating func tokenize(_ text: String) throws -> [ConfigGroup] {
        try KeyFile.groups(of: text, path: path) { warn($0, $1) }
    }

    // MARK: Keys

    mutating func applyProperty(_ e: ConfigEntry) throws {
        lines[e.key] = e.line
        switch e.key {
        case "gpu-id": config.gpuID = try int(e, min: 0)
        case "net-scale-factor":
            let v = try float(e)
            guard v > 0 else { throw bad(e, "must be greater than 0") }
            config.netScaleFactor = v
        case "offsets":
            let values = try floatList(e)
            guard values.count == 0 || values.count == 1 || values.count == 3 else {
                throw bad(e, "expected 1 or 3 values (per channel), got \(values.count)")
            }
            config.offsets = values
        case "model-color-format":
            let v = try int(e)
            guard let format = InferConfiguration.ColorFormat(rawValue: v) else {
                throw bad(e, "\(v) is not 0 (RGB), 1 (BGR) or 2 (GRAY)")
            }
            config.modelColorFormat = format
        case "onnx-file": config.onnxFile = try resolvedPath(e)
        case "int8-onnx-file": config.int8OnnxFile = try resolvedPath(e)
        case "labelfile-path": config.labelfilePath = try resolvedPath(e)
        case "batch-size": config.batchSize = try int(e, min: 1)
        case "process-mode":
            let v = try int(e)
            guard v == 1 else {
                throw bad(e, v == 2 ? "2 (secondary) is not supported; Tributary runs primary detectors only (1)"
                                    : "\(v) is not 1 (primary)")
            }
            config.processMode = v
        case "network-mode":
            let v = try int(e)
            guard (0...2).contains(v) else { throw bad(e, "\(v) is not 0 (FP32), 1 (INT8) or 2 (FP16)") }
            config.networkMode = v
        case "num-detected-classes": config.numDetectedClasses = try int(e, min: 0)
        case "interval": config.interval = try int(e, min: 0)
        case "gie-unique-id": config.gieUniqueID = try int(e, min: 1)
        case "maintain-aspect-ratio": config.maintainAspectRatio = try bool(e)
        case "symmetric-padding": config.symmetricPadding = try bool(e)
        case "cluster-mode":
            let v = try int(e)
            switch v {
            case 2: config.clusterMode = .nms
            case 4: config.clusterMode = .none
            default:
                let names = [0: "0 (groupRectangles)", 1: "1 (DBSCAN)", 3: "3 (hybrid)"]
                throw bad(e, "cluster-mode \(names[v] ?? String(v)) is not supported; Tributary supports 2 (NMS) and 4 (no clustering)")
            }
        case "output-parser":
            guard let kind = OutputParserKind(rawValue: e.value.lowercased()) else {
                throw bad(e, "'\(e.value)' is not one of \(OutputParserKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.outputParser = kind
        case "execution-provider":
            guard let provider = ExecutionProvider(rawValue: e.value.uppercased()) else {
                throw bad(e, "'\(e.value)' is not CPU or CUDA")
            }
            config.executionProvider = provider
        case "intra-op-threads": config.intraOpThreads = try int(e, min: 0)
        default:
            if !ignoredPropertyKeys.contains(e.key) { warn(e.line, "unknown key '\(e.key)' in [property]") }
        }
    }

    mutating func applyClassAttribute(_ e: ConfigEntry, group: String, to a: inout ClassAttributes) throws {
        switch e.key {
        case "pre-cluster-threshold": a.preClusterThreshold = try unitFloat(e)
        case "post-cluster-threshold": a.postClusterThreshold = try unitFloat(e)
        case "nms-iou-threshold": a.nmsIoUThreshold = try unitFloat(e)
        case "topk":
            let v = try int(e)
            guard v == -1 || v >= 1 else { throw bad(e, "\(v) must be -1 (no limit) or at least 1") }
            a.topK = v
        case "detected-min-w": a.detectedMinWidth = try int(e, min: 0)
        case "detected-min-h": a.detectedMinHeight = try int(e, min: 0)
        case "detected-max-w": a.detectedMaxWidth = try int(e, min: 0)
        case "detected-max-h": a.detectedMaxHeight = try int(e, min: 0)
        default:
            if !ignoredClassKeys.contains(e.key) { warn(e.line, "unknown key '\(e.key)' in [\(group)]") }
        }
    }

    mutating func applyTrackerSetting(_ e: ConfigEntry, to t: inout TrackerConfiguration) throws {
        switch e.key {
        case "tracker-type":
            guard let kind = TrackerConfiguration.Kind(rawValue: e.value) else {
                throw bad(e, "'\(e.value)' is not a tracker type (\(TrackerConfiguration.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            t.kind = kind
        case "max-age": t.maxAge = try int(e, min: 0)
        case "min-hits": t.minHits = try int(e, min: 1)
        case "iou-threshold": t.iouThreshold = try unitFloat(e)
        case "class-agnostic": t.classAgnostic = try bool(e)
        default: warn(e.line, "unknown key '\(e.key)' in [tracker]")
        }
    }

    // MARK: Cross-key checks

    mutating func checkFiles() throws {
        guard let onnx = config.onnxFile else {
            throw InferConfigurationError(path: path, message: "[property] has no 'onnx-file' (Tributary runs ONNX models only)")
        }
        guard isReadableRegularFile(onnx) else {
            throw InferConfigurationError(path: path, line: lines["onnx-file"], key: "onnx-file", message: "no readable model file '\(onnx)'")
        }
        if config.networkMode == 1 {
            if let int8 = config.int8OnnxFile {
                guard isReadableRegularFile(int8) else {
                    throw InferConfigurationError(path: path, line: lines["int8-onnx-file"], key: "int8-onnx-file",
                                                  message: "no readable INT8 model file '\(int8)' (network-mode=1 needs it)")
                }
            } else {
                warn(lines["network-mode"] ?? 0, "network-mode=1 (INT8) but no int8-onnx-file; running onnx-file")
            }
        }
        if let labelPath = config.labelfilePath {
            switch readTextFile(labelPath) {
            case .success(let text): config.labels = parseLabels(text)
            case .failure(let error):
                throw InferConfigurationError(path: path, line: lines["labelfile-path"], key: "labelfile-path",
                                              message: "cannot read label file '\(labelPath)': \(error.text)")
            }
        }
    }

    mutating func settleClassCount(classGroups: [(id: Int, group: ConfigGroup)]) throws {
        if config.numDetectedClasses == 0 {
            guard !config.labels.isEmpty else {
                throw InferConfigurationError(path: path, message: "num-detected-classes is not set and there are no labels to count (set num-detected-classes or labelfile-path)")
            }
            config.numDetectedClasses = config.labels.count
        } else if !config.labels.isEmpty && config.labels.count != config.numDetectedClasses {
            warn(lines["num-detected-classes"] ?? 0,
                 "num-detected-classes=\(config.numDetectedClasses) but '\(config.labelfilePath ?? "")' has \(config.labels.count) labels")
        }
        for (id, group) in classGroups where id >= config.numDetectedClasses {
            warn(group.line, "[\(group.name)] names a class beyond num-detected-classes=\(config.numDetectedClasses)")
        }
    }

    // MARK: Values

    mutating func warn(_ line: Int, _ text: String) {
        warnings.append((line, text))
    }

    func bad(_ e: ConfigEntry, _ message: String) -> InferConfigurationError {
        InferConfigurationError(path: path, line: e.line, key: e.key, message: message)
    }

    /// GKeyFile has no trailing comments; say so when that is the likely mistake.
    func notA(_ what: String, _ e: ConfigEntry) -> InferConfigurationError {
        let hint = e.value.contains("#") ? " ('#' comments must be on their own line)" : ""
        return bad(e, "'\(e.value)' is not \(what)\(hint)")
    }

    func int(_ e: ConfigEntry, min: Int? = nil) throws -> Int {
        guard let v = Int(e.value) else { throw notA("an integer", e) }
        // nvinfer reads a C int (g_key_file_get_integer); beyond it, `Int32(_:)` at the ONNX
        // Runtime and CUDA calls (intra-op-threads, gpu-id) would trap.
        guard Int32(exactly: v) != nil else { throw bad(e, "\(v) is beyond a 32-bit integer") }
        if let min, v < min { throw bad(e, "\(v) must be at least \(min)") }
        return v
    }

    func float(_ e: ConfigEntry) throws -> Float {
        try float(e.value, e)
    }

    func float(_ text: some StringProtocol, _ e: ConfigEntry) throws -> Float {
        guard let v = Float(String(text)), v.isFinite else { throw notA("a number", e) }
        return v
    }

    func unitFloat(_ e: ConfigEntry) throws -> Float {
        let v = try float(e)
        guard (0...1).contains(v) else { throw bad(e, "\(v) is outside [0, 1]") }
        return v
    }

    /// `0`/`1`, plus GKeyFile's `true`/`false`.
    func bool(_ e: ConfigEntry) throws -> Bool {
        switch e.value {
        case "1", "true": return true
        case "0", "false": return false
        default: throw notA("0 or 1", e)
        }
    }

    /// `a;b;c`, a trailing `;` allowed (GKeyFile writes one).
    func floatList(_ e: ConfigEntry) throws -> [Float] {
        var parts = e.value.split(separator: ";", omittingEmptySubsequences: false).map { trimmed($0) }
        if parts.last?.isEmpty == true { parts.removeLast() }
        return try parts.map { part in
            guard !part.isEmpty else { throw bad(e, "empty item in list '\(e.value)'") }
            return try float(part, e)
        }
    }

    func resolvedPath(_ e: ConfigEntry) throws -> String {
        guard !e.value.isEmpty else { throw bad(e, "empty path") }
        return resolvedConfigPath(e.value, relativeTo: path)
    }
}

/// Label file: one label per line; a single line with `;` separators (nvinfer's classifier
/// style) is split on `;`.
private func parseLabels(_ text: String) -> [String] {
    let lines = text.split { $0 == "\n" || $0 == "\r\n" }.map { String(trimmed($0)) }.filter { !$0.isEmpty }
    guard lines.count == 1, lines[0].contains(";") else { return lines }
    var parts = lines[0].split(separator: ";", omittingEmptySubsequences: false).map { String(trimmed($0)) }
    while parts.last?.isEmpty == true { parts.removeLast() }
    return parts
}

func trimmed(_ s: some StringProtocol) -> Substring {
    var sub = Substring(s)
    while let c = sub.first, c.isWhitespace { sub.removeFirst() }
    while let c = sub.last, c.isWhitespace { sub.removeLast() }
    return sub
}

// MARK: - Files and paths

/// Relative paths are taken from the config file's folder, as nvinfer does, and made absolute
/// so they do not depend on the working directory later. Absolute paths are kept as written.
private func resolvedConfigPath(_ value: String, relativeTo configPath: String) -> String {
    if value.hasPrefix("/") { return value }
    var folder: String
    if let slash = configPath.lastIndex(of: "/") {
        folder = slash == configPath.startIndex ? "/" : String(configPath[..<slash])
    } else {
        folder = "."
    }
    if !folder.hasPrefix("/") { folder = currentDirectory() + "/" + folder }
    return normalizedPath(folder + "/" + value)
}

/// Removes `.`, `..` and repeated `/` lexically (symlinks are not followed) from an absolute path.
private func normalizedPath(_ absolute: String) -> String {
    var components: [Substring] = []
    for part in absolute.split(separator: "/") {
        switch part {
        case ".": continue
        case "..": if !components.isEmpty { components.removeLast() }
        default: components.append(part)
        }
    }
    return "/" + components.joined(separator: "/")
}

private func currentDirectory() -> String {
    guard let buffer = getcwd(nil, 0) else { return "." }
    defer { free(buffer) }
    return String(cString: buffer)
}

private func isReadableRegularFile(_ path: String) -> Bool {
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
    return access(path, R_OK) == 0
}

/// An errno, with its text.
struct SystemError: Error, CustomStringConvertible {
    var code: Int32
    var text: String { String(cString: strerror(code)) }
    var description: String { text }
}

/// Reads a whole file as UTF-8 (a leading byte-order mark dropped).
func readTextFile(_ path: String) -> Result<String, SystemError> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .failure(SystemError(code: errno)) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(SystemError(code: errno))
        }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
    return .success(String(decoding: bytes, as: UTF8.self))
}
