import Foundation
import Testing
@testable import Tributary
import TributarySample

/// Every CUDA kernel of the GPU path compiles with NVRTC (the PyPI wheel set-up installs; no GPU
/// is needed to compile), for the H100/H200 architecture and an older one.
@Suite struct KernelCompileTests {
    static let nvrtcPath: String = {
        let lib = TestMedia.path(".deps/venv/lib")
        let python = (try? FileManager.default.contentsOfDirectory(atPath: lib))?.first { $0.hasPrefix("python3") } ?? "python3"
        return "\(lib)/\(python)/site-packages/nvidia/cu13/lib/libnvrtc.so.13"
    }()
    static let nvrtc: NVRTC? = try? NVRTC(libraryPath: nvrtcPath)

    @Test(arguments: ["compute_90", "compute_75"])
    func everyKernelCompiles(architecture: String) throws {
        let nvrtc = try #require(Self.nvrtc, "NVRTC missing: run scripts/setup.sh")
        #expect(nvrtc.version.major >= 12)
        // The framework's kernels, and the sample's edit (an elementwise kernel of the app's).
        for kernel in CUDAKernels.all + [("halve_red", SampleEdit.halveRedKernel.source)] {
            let ptx = try nvrtc.compile(kernel.source, name: kernel.name + ".cu", architecture: architecture)
            #expect(ptx.contains(".entry \(kernel.name)"), "\(kernel.name): no entry point in the PTX")
            #expect(ptx.contains(".target sm_\(architecture.dropFirst("compute_".count))"))
        }
    }

    @Test func aBrokenElementwiseExpressionFailsWithTheCompilersLog() throws {
        let nvrtc = try #require(Self.nvrtc, "NVRTC missing: run scripts/setup.sh")
        let source = CUDAKernels.elementwise(name: "broken", expression: "r = no_such_value * 2")
        #expect {
            _ = try nvrtc.compile(source, name: "broken.cu", architecture: "compute_90")
        } throws: { error in
            "\(error)".contains("no_such_value") && "\(error)".contains("broken.cu")
        }
    }
}
