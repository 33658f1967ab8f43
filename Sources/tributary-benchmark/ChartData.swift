import ArgumentParser
import Tributary
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `--chart-data DIR` and `--charts DIR`: the run's tables also as chart data, one tab-separated
/// file a table with the columns of the committed `docs/charts/*.tsv`, and with `--charts` as PNGs
/// drawn by `scripts/charts.sh` (gnuplot). Without either flag nothing here runs and the output
/// is unchanged.
struct ChartOptions: ParsableArguments {
    @Option(name: .customLong("chart-data"), help: ArgumentHelp(
        "Also write each chartable table of this run (CPU table, --gpu-table and its --gpus table, --soak-minutes, --latency-seconds) as DIR/<chart>.tsv, the columns of docs/charts/.",
        valueName: "DIR"))
    var dataDirectory: String?

    @Option(name: .customLong("charts"), help: ArgumentHelp(
        "Also render the run's charts into DIR as PNGs with scripts/charts.sh (gnuplot; scripts/setup.sh installs it); the data goes to --chart-data's folder, or DIR.",
        valueName: "DIR"))
    var pngDirectory: String?

    /// For the tests: print each chart's file name and columns (tab-separated) and exit.
    @Flag(name: .customLong("chart-columns"), help: .hidden)
    var printColumns = false

    /// Where the data files go: `--chart-data`, else `--charts`' folder, else nowhere.
    var directory: String? { dataDirectory ?? pngDirectory }

    func validate() throws {
        if printColumns {
            throw CleanExit.message(Chart.allCases.map { ([$0.rawValue] + $0.columns).joined(separator: "\t") }.joined(separator: "\n"))
        }
    }
}

/// The charts the benchmark's tables feed: file name, what the chart shows (the data file's first
/// line) and the columns, in the order of the committed files.
enum Chart: String, CaseIterable {
    case cpuFPS = "cpu-fps"
    case gpuFPS = "gpu-fps"
    case gpuScaling = "gpu-scaling"
    case rss
    case latency

    var description: String {
        switch self {
        case .cpuFPS: "aggregate frames per second against streams on the CPU, with ceilings"
        case .gpuFPS: "aggregate frames per second against streams on one GPU, with the NVDEC ceiling"
        case .gpuScaling: "aggregate frames per second against GPUs, a process per GPU or one for all"
        case .rss: "resident memory over a soak: looping streams with the detector"
        case .latency: "frame latency decode -> sink against streams, streams looping in real time"
        }
    }

    var columns: [String] {
        switch self {
        case .cpuFPS:
            ["streams", "fp32_fakesink", "fp32_mp4", "ort_fp32", "fp32_ratio", "int8_fakesink", "ort_int8", "int8_ratio",
             "int8_over_fp32", "decode_only", "gstreamer_alone", "decode_ratio", "peak_rss_mb"]
        case .gpuFPS:
            ["streams", "nvdec_ceiling", "gpu_pipeline", "per_stream", "gpu_over_ceiling", "gpu_mb", "cpu_cores_busy",
             "cpu_path", "gpu_over_cpu_path"]
        case .gpuScaling:
            ["streams_per_gpu", "gpus", "mode", "processes", "aggregate_fps", "per_stream", "speedup", "scaling_efficiency"]
        case .rss:
            ["seconds", "frames", "rss_mb"]
        case .latency:
            ["streams", "tracker", "run_seconds", "frames", "fps_per_stream", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
        }
    }
}

/// One table's chart data, rewritten whole after every row (a run that fails later keeps the
/// rows measured so far).
final class ChartDataFile: @unchecked Sendable {
    let chart: Chart
    let path: String
    private let header: String
    private let rows = Locked<[String]>([])

    init(chart: Chart, directory: String, machine: String) {
        self.chart = chart
        path = directory + "/" + chart.rawValue + ".tsv"
        header = """
            # Tributary chart data: \(chart.rawValue) (\(chart.description))
            # source: tributary-benchmark, written with the table it printed ("-" where it printed none)
            # command: \(CommandLine.arguments.joined(separator: " "))
            # date: \(utcNow())
            # machine: \(machine.replacingTabsAndNewlines())

            """ + chart.columns.joined(separator: "\t") + "\n"
    }

    /// A row: the table's figures as printed (nil or "–" where it printed none), one a column.
    func add(_ values: [String?]) {
        precondition(values.count == chart.columns.count, "\(chart.rawValue): \(values.count) values for \(chart.columns.count) columns")
        let line = values.map { value in value.map { $0 == "–" || $0.isEmpty ? "-" : $0.replacingTabsAndNewlines() } ?? "-" }
            .joined(separator: "\t")
        let text = header + rows.withValue { $0.append(line); return $0.joined(separator: "\n") } + "\n"
        do { try writeFileAtomically(path, text) } catch { printError("Error: chart data: \(error)") }
    }
}

extension TributaryBenchmark {
    /// The chart data file of `chart` for this run, nil without `--chart-data` / `--charts`.
    func chartData(_ chart: Chart, machine: String) -> ChartDataFile? {
        guard let directory = charts.directory else { return nil }
        do { try makeDirectories(directory) } catch {
            printError("Error: chart data: \(error)")
            return nil
        }
        return ChartDataFile(chart: chart, directory: directory, machine: machine)
    }

    /// This machine in a line, for a chart's subtitle: the CPU model and cores, and the input.
    func cpuMachine(streamsNote: String) -> String {
        "\(cpuModelName()), \(processorCount()) cores; \(streamsNote) \(input), muxer \(width)x\(height)"
    }

    /// `--charts DIR`: renders the data folder's charts into DIR with `scripts/charts.sh` (found
    /// beside the working directory or the executable); true when there was nothing to do or it
    /// worked.
    func renderCharts() -> Bool {
        guard let pngDirectory = charts.pngDirectory, let dataDirectory = charts.directory else { return true }
        flushStandardOutput()
        var candidates = ["scripts/charts.sh"]
        if let executable = try? ChildProcess.currentExecutable() {
            var folder = executable
            for _ in 0..<4 {
                folder = String(folder[..<(folder.lastIndex(of: "/") ?? folder.startIndex)])
                if folder.isEmpty { break }
                candidates.append(folder + "/scripts/charts.sh")
            }
        }
        guard let script = candidates.first(where: { access($0, R_OK) == 0 }) else {
            printError("Error: charts: no scripts/charts.sh in the working directory or above the executable; "
                       + "the data is in \(dataDirectory)")
            return false
        }
        do {
            let status = try ChildProcess(executable: "/bin/bash", arguments: [script, dataDirectory, pngDirectory], pipes: false).wait()
            guard status == 0 else {
                printError("Error: charts: \(script) exited with \(status)\(status == 127 ? " (gnuplot missing? scripts/setup.sh installs it)" : "")")
                return false
            }
            return true
        } catch {
            printError("Error: charts: \(error)")
            return false
        }
    }
}

private extension String {
    func replacingTabsAndNewlines() -> String {
        String(map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}

/// Now, as `2026-12-07 15:04 UTC`.
private func utcNow() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    var buffer = [CChar](repeating: 0, count: 64)
    let count = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M UTC", &parts)
    return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The CPU's model name from /proc/cpuinfo ("CPU" where there is none).
private func cpuModelName() -> String {
    guard let file = fopen("/proc/cpuinfo", "r") else { return "CPU" }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 1024)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("model name"), let colon = text.firstIndex(of: ":") else { continue }
        let name = text[text.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
        return name.isEmpty ? "CPU" : name
    }
    return "CPU"
}

/// `mkdir -p`.
private func makeDirectories(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw PipelineError.failed(what: prefix, message: "cannot create the folder: \(String(cString: strerror(errno)))")
        }
        prefix += "/"
    }
}

/// Writes `text` to `path` through a temporary file beside it and a rename.
private func writeFileAtomically(_ path: String, _ text: String) throws {
    let temporary = path + ".partial"
    guard let file = fopen(temporary, "w") else {
        throw PipelineError.failed(what: temporary, message: "cannot write: \(String(cString: strerror(errno)))")
    }
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    guard fclose(file) == 0, written == bytes.count, rename(temporary, path) == 0 else {
        throw PipelineError.failed(what: path, message: "cannot write: \(String(cString: strerror(errno)))")
    }
}
