#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
#if TRIBUTARY_FUZZ
import CLibFuzzer

/// The callback `main` hands libFuzzer. Named so because libFuzzer's own `main`, linked whole
/// though SwiftPM's `main` replaces it, refers to this name.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzSupport.body!(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#endif

/// What the fuzz targets share: their `main` and the files a parser must find on disk.
public enum FuzzSupport {
    #if TRIBUTARY_FUZZ
    nonisolated(unsafe) fileprivate static var body: (([UInt8]) -> Void)?
    #endif

    /// Built by `scripts/fuzz.sh` (-sanitize=fuzzer -DTRIBUTARY_FUZZ): libFuzzer's driver, with
    /// its flags, over `body`. In an ordinary build: runs `body` on every file named and every
    /// file in a folder named, in name order, so a corpus or a crash replays without libFuzzer.
    public static func main(_ body: @escaping ([UInt8]) -> Void) -> Never {
        #if TRIBUTARY_FUZZ
        Self.body = body
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzerTestOneInput))
        #else
        exit(replay(Array(CommandLine.arguments.dropFirst()), through: body))
        #endif
    }

    static func replay(_ arguments: [String], through body: ([UInt8]) -> Void) -> Int32 {
        guard !arguments.isEmpty else {
            print("usage: \(CommandLine.arguments.first ?? "fuzz-target") FILE|FOLDER … (replays inputs; scripts/fuzz.sh builds the libFuzzer binary)")
            return 2
        }
        var count = 0
        for argument in arguments {
            for file in files(at: argument) {
                guard let bytes = readFile(file) else {
                    print("cannot read \(file)")
                    return 1
                }
                body(bytes)
                count += 1
            }
        }
        print("replayed \(count) inputs")
        return 0
    }

    nonisolated(unsafe) private static var scratchFolders: [String] = []

    /// A new folder under `$TMPDIR` (or /tmp), removed with what it holds at exit.
    public static func makeScratchFolder() -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/tributary-fuzz-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("cannot make a scratch folder under \(base)")
        }
        if scratchFolders.isEmpty {
            atexit { FuzzSupport.scratchFolders.forEach(FuzzSupport.removeTree) }
        }
        scratchFolders.append(String(cString: made))
        return String(cString: made)
    }

    public static func makeFolder(_ path: String) {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { fatalError("cannot make \(path)") }
    }

    public static func writeFile(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { fatalError("cannot write \(path)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { fatalError("cannot write \(path)") }
    }

    /// Removes a folder the fixtures made (files and folders only; a link is removed, not followed).
    private static func removeTree(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            files(at: path).forEach(removeTree)
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    private static func files(at path: String) -> [String] {
        guard let folder = opendir(path) else { return [path] }
        defer { closedir(folder) }
        var names: [String] = []
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasPrefix(".") { continue }
            names.append(path + "/" + name)
        }
        return names.sorted()
    }

    private static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }
}
