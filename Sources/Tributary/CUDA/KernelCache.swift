#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Machine code of our kernels on disk, so NVRTC compiles each kernel once per GPU architecture
/// and NVRTC version rather than at every start. The folder is `$TRIBUTARY_KERNEL_CACHE`,
/// else `$XDG_CACHE_HOME/tributary/kernels`, else `~/.cache/tributary/kernels`; a file is named by
/// a hash of the source, kernel name, architecture and NVRTC version. Unwritable folders only
/// cost the cache, never the run.
public enum KernelCache {
    public static var folder: String {
        if let explicit = getenv("TRIBUTARY_KERNEL_CACHE") { return String(cString: explicit) }
        if let xdg = getenv("XDG_CACHE_HOME") { return String(cString: xdg) + "/tributary/kernels" }
        if let home = getenv("HOME") { return String(cString: home) + "/.cache/tributary/kernels" }
        return "/tmp/tributary-kernels"
    }

    /// The CUBIN of `source` for `architecture` ("sm_90"), from the cache or freshly compiled.
    public static func cubin(source: String, name: String, architecture: String) throws -> [UInt8] {
        let nvrtc = try NVRTC.shared()
        let key = fnv1a("\(nvrtc.version.major).\(nvrtc.version.minor)|\(architecture)|\(name)|\(source)")
        let path = "\(folder)/\(name)-\(architecture)-\(String(key, radix: 16)).cubin"
        if let cached = read(path), !cached.isEmpty { return cached }
        let cubin = try nvrtc.compileCUBIN(source, name: name, architecture: architecture)
        write(cubin, to: path)
        return cubin
    }

    /// 64-bit FNV-1a: stable across runs and builds (Swift's `Hasher` is seeded per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    private static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }

    /// Writes through a temporary name and renames, so a concurrent reader never sees half a file.
    private static func write(_ bytes: [UInt8], to path: String) {
        makeFolders(for: path)
        let temporary = "\(path).\(getpid()).tmp"
        guard let file = fopen(temporary, "wb") else { return }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
        if written == bytes.count { rename(temporary, path) } else { unlink(temporary) }
    }

    private static func makeFolders(for path: String) {
        var index = path.startIndex
        while let slash = path[path.index(after: index)...].firstIndex(of: "/") {
            mkdir(String(path[..<slash]), 0o755)
            index = slash
        }
    }
}
