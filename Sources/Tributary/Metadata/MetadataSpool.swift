#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `--meta-spool DIR`: messages a broker could not take, on disk in order, as append-only segment
/// files of lines `<camera_id>\t<json>` (`seg-000001.log`, …): a segment is synced when it is
/// closed, the oldest replayed and deleted first, and the oldest dropped when the spool is over its
/// cap. Used by one thread at a time (the sink's publisher, from its start), hence unchecked.
final class MetadataSpool: @unchecked Sendable {
    struct Entry: Equatable {
        var cameraID: String
        var json: String
        var fence: String? = nil
        var frameNumber = 0
    }

    let directory: String
    let maximumBytes: Int
    let segmentBytes: Int
    /// Segments on disk, oldest first: number, bytes, lines.
    private var segments: [(number: Int, bytes: Int, lines: Int)] = []
    private var writing: UnsafeMutablePointer<FILE>?

    /// - Parameter segmentBytes: nil: a quarter of the cap, between 64 KiB and 4 MiB (the cap
    ///   drops whole segments, so there must be several).
    init(directory: String, maximumBytes: Int, segmentBytes: Int? = nil) throws {
        self.directory = directory
        self.maximumBytes = maximumBytes
        self.segmentBytes = segmentBytes ?? max(64 << 10, min(4 << 20, maximumBytes / 4))
        // The folder and those above it (each sink spools in a folder of its own under --meta-spool).
        var partial = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw PipelineError.invalidArgument("--meta-spool \(directory): cannot create \(partial) (\(String(cString: strerror(errno))))")
            }
        }
        // Segments a previous run left are replayed first.
        if let dir = opendir(directory) {
            defer { closedir(dir) }
            var found: [Int] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name.hasPrefix("seg-"), name.hasSuffix(".log"), let number = Int(name.dropFirst(4).dropLast(4)) { found.append(number) }
            }
            for number in found.sorted() {
                let lines = read(number).count
                var info = stat()
                stat(path(number), &info)
                segments.append((number, Int(info.st_size), lines))
            }
        }
    }

    /// Messages on disk.
    var backlog: Int { segments.reduce(0) { $0 + $1.lines } }

    private func path(_ number: Int) -> String {
        let digits = String(number)
        return "\(directory)/seg-\(String(repeating: "0", count: max(0, 6 - digits.count)) + digits).log"
    }

    /// Appends messages; returns how many old ones were dropped to stay under the cap.
    func append(_ entries: [Entry]) -> Int {
        var dropped = 0
        for entry in entries {
            if writing == nil || segments.last.map({ $0.bytes >= segmentBytes }) == true { rotate() }
            guard let file = writing else { return dropped + entries.count }
            // `camera \t json`, or `camera \t @fence@frame \t json` (a JSON text never starts with `@`).
            let fenced = entry.fence.map { "@\($0)@\(entry.frameNumber)\t" } ?? ""
            let line = entry.cameraID.replacing("\t", with: " ").replacing("\n", with: " ") + "\t" + fenced + entry.json + "\n"
            _ = line.withCString { fputs($0, file) }
            segments[segments.count - 1].bytes += line.utf8.count
            segments[segments.count - 1].lines += 1
        }
        if let writing { fflush(writing) }
        while segments.reduce(0, { $0 + $1.bytes }) > maximumBytes, segments.count > 1 {
            let oldest = segments.removeFirst()
            unlink(path(oldest.number))
            dropped += oldest.lines
        }
        return dropped
    }

    /// Closes the segment being written (synced) and opens the next.
    private func rotate() {
        closeWriting()
        let number = (segments.last?.number ?? 0) + 1
        writing = fopen(path(number), "a")
        if writing != nil { segments.append((number, 0, 0)) }
    }

    private func closeWriting() {
        guard let file = writing else { return }
        fflush(file)
        fsync(fileno(file))
        fclose(file)
        writing = nil
    }

    /// The oldest segment's messages (the one being written is closed first, so it can be replayed).
    func oldest() -> (number: Int, entries: [Entry])? {
        guard let first = segments.first else { return nil }
        if segments.count == 1 { closeWriting() }
        return (first.number, read(first.number))
    }

    /// The oldest segment went to the broker: it goes.
    func removeOldest(_ number: Int) {
        guard segments.first?.number == number else { return }
        segments.removeFirst()
        unlink(path(number))
    }

    func close() { closeWriting() }

    private func read(_ number: Int) -> [Entry] {
        guard let file = fopen(path(number), "r") else { return [] }
        defer { fclose(file) }
        var entries: [Entry] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line).dropLast()  // the newline
            guard let tab = text.firstIndex(of: "\t") else { continue }
            var entry = Entry(cameraID: String(text[..<tab]), json: String(text[text.index(after: tab)...]))
            if entry.json.first == "@", let end = entry.json.firstIndex(of: "\t") {
                let parts = entry.json[entry.json.index(after: entry.json.startIndex)..<end].split(separator: "@")
                entry.fence = parts.first.map(String.init)
                entry.frameNumber = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
                entry.json = String(entry.json[entry.json.index(after: end)...])
            }
            entries.append(entry)
        }
        return entries
    }
}
