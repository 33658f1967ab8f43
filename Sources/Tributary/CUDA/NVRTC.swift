#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// NVIDIA's runtime compiler, loaded with dlopen so the package builds and runs without CUDA.
/// Our kernels are CUDA C strings compiled at start-up for the device's architecture; CI
/// compiles every one of them with the NVRTC of the PyPI wheel `nvidia-cuda-nvrtc` (no GPU
/// needed), so a kernel that does not compile fails CI.
public final class NVRTC: @unchecked Sendable {
    private typealias CreateProgram = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafePointer<CChar>, UnsafePointer<CChar>,
                                                      Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    private typealias CompileProgram = @convention(c) (OpaquePointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    private typealias GetSize = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Int32
    private typealias GetText = @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Int32
    private typealias DestroyProgram = @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32
    private typealias ErrorString = @convention(c) (Int32) -> UnsafePointer<CChar>?
    private typealias Version = @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32

    public let libraryPath: String
    public let version: (major: Int, minor: Int)
    private let createProgram: CreateProgram
    private let compileProgram: CompileProgram
    private let getPTXSize: GetSize
    private let getPTX: GetText
    private let getCUBINSize: GetSize
    private let getCUBIN: GetText
    private let getLogSize: GetSize
    private let getLog: GetText
    private let destroyProgram: DestroyProgram
    private let errorString: ErrorString

    /// Where NVRTC is looked for: `$TRIBUTARY_NVRTC_LIBRARY`, the set-up venv's wheel
    /// (`nvidia/cu13/lib`), then the loader's search path.
    public static func libraryCandidates() -> [String] {
        var candidates: [String] = []
        if let env = getenv("TRIBUTARY_NVRTC_LIBRARY") { candidates.append(String(cString: env)) }
        for python in ["python3.11", "python3.12", "python3.13"] {
            candidates.append(".deps/venv/lib/\(python)/site-packages/nvidia/cu13/lib/libnvrtc.so.13")
        }
        candidates += ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]
        return candidates
    }

    /// - Parameter libraryPath: a specific `libnvrtc.so`; nil searches `libraryCandidates()`.
    public init(libraryPath explicitPath: String? = nil) throws {
        var handle: UnsafeMutableRawPointer?
        var path = ""
        for candidate in explicitPath.map({ [$0] }) ?? Self.libraryCandidates() {
            handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { path = candidate; break }
        }
        guard let handle else {
            throw CUDAError.unavailable("NVRTC not found (tried \(Self.libraryCandidates().joined(separator: ", "))); run scripts/setup.sh or set TRIBUTARY_NVRTC_LIBRARY")
        }
        func symbol<T>(_ name: String, _ type: T.Type) throws -> T {
            guard let raw = dlsym(handle, name) else { throw CUDAError.unavailable("\(path) has no \(name)") }
            return unsafeBitCast(raw, to: type)
        }
        libraryPath = path
        createProgram = try symbol("nvrtcCreateProgram", CreateProgram.self)
        compileProgram = try symbol("nvrtcCompileProgram", CompileProgram.self)
        getPTXSize = try symbol("nvrtcGetPTXSize", GetSize.self)
        getPTX = try symbol("nvrtcGetPTX", GetText.self)
        getCUBINSize = try symbol("nvrtcGetCUBINSize", GetSize.self)
        getCUBIN = try symbol("nvrtcGetCUBIN", GetText.self)
        getLogSize = try symbol("nvrtcGetProgramLogSize", GetSize.self)
        getLog = try symbol("nvrtcGetProgramLog", GetText.self)
        destroyProgram = try symbol("nvrtcDestroyProgram", DestroyProgram.self)
        errorString = try symbol("nvrtcGetErrorString", ErrorString.self)
        var major: Int32 = 0, minor: Int32 = 0
        _ = try symbol("nvrtcVersion", Version.self)(&major, &minor)
        version = (Int(major), Int(minor))
    }

    /// The process's NVRTC, loaded once.
    public static func shared() throws -> NVRTC { try sharedLoad.get() }
    private static let sharedLoad = LoadedOnce { try NVRTC() }

    /// Compiles CUDA C `source` to PTX for `architecture` (e.g. "compute_90"). Throws with
    /// NVRTC's log, which names the line that failed.
    public func compile(_ source: String, name: String, architecture: String, options extra: [String] = []) throws -> String {
        let ptx = try compile(source, name: name, architecture: architecture, options: extra, size: getPTXSize, text: getPTX)
        return String(decoding: ptx.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Compiles CUDA C `source` to machine code (a CUBIN) for a real architecture (e.g. "sm_90"),
    /// so loading it needs no JIT step.
    public func compileCUBIN(_ source: String, name: String, architecture: String, options extra: [String] = []) throws -> [UInt8] {
        try compile(source, name: name, architecture: architecture, options: extra, size: getCUBINSize, text: getCUBIN)
    }

    private func compile(_ source: String, name: String, architecture: String, options extra: [String],
                         size getSize: GetSize, text getText: GetText) throws -> [UInt8] {
        var program: OpaquePointer?
        var status = createProgram(&program, source, name, 0, nil, nil)
        guard status == 0 else { throw CUDAError.compile(name: name, log: message(status)) }
        defer { _ = destroyProgram(&program) }
        let options = ["--gpu-architecture=\(architecture)", "--std=c++17", "-default-device"] + extra
        status = withCStrings(options) { compileProgram(program, Int32(options.count), $0) }
        if status != 0 {
            var size = 0
            _ = getLogSize(program, &size)
            var log = [CChar](repeating: 0, count: max(size, 1))
            _ = getLog(program, &log)
            throw CUDAError.compile(name: name, log: message(status) + ": " + String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var size = 0
        status = getSize(program, &size)
        guard status == 0, size > 0 else { throw CUDAError.compile(name: name, log: message(status)) }
        var output = [CChar](repeating: 0, count: size)
        status = getText(program, &output)
        guard status == 0 else { throw CUDAError.compile(name: name, log: message(status)) }
        return output.map { UInt8(bitPattern: $0) }
    }

    private func message(_ status: Int32) -> String {
        errorString(status).map { String(cString: $0) } ?? "NVRTC error \(status)"
    }
}

/// Errors of the CUDA layer, with the library's own message.
public enum CUDAError: Error, CustomStringConvertible, Sendable {
    case unavailable(String)
    case compile(name: String, log: String)
    /// A driver call failed: the call, the error's name and its text.
    case driver(call: String, name: String, message: String)
    case hostPixels(String)

    public var description: String {
        switch self {
        case .unavailable(let m): return "CUDA is not available: \(m)"
        case .compile(let name, let log): return "kernel \(name) does not compile: \(log)"
        case .driver(let call, let name, let message): return "CUDA \(call) failed: \(name) (\(message))"
        case .hostPixels(let m): return "\(m): these pixels are in host memory"
        }
    }
}
