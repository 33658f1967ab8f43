// swift-tools-version: 6.0
import PackageDescription

// The ONNX Runtime C header is fetched by scripts/setup.sh into this ignored folder, with a module
// map, so Swift imports it as `CONNXRuntime` when it is there (`#if canImport`) and builds without
// it otherwise. The library is loaded with dlopen at run time, never linked.
let onnxRuntimeInclude = Context.packageDirectory + "/.deps/onnxruntime/include"
// GStreamer's headers, named here rather than through pkg-config: its flags carry `-pthread`, which
// SwiftPM refuses with a "prohibited flag(s)" warning per target and build (hundreds of lines). The
// multiarch folder of either Debian architecture; the libraries are linked by the module map.
let gstreamerIncludes = ["/usr/include/gstreamer-1.0", "/usr/include/glib-2.0", "/usr/include/orc-0.4"]
    + ["x86_64-linux-gnu", "aarch64-linux-gnu"].map { "/usr/lib/\($0)/glib-2.0/include" }
let headerSearchSettings: [SwiftSetting] = [.unsafeFlags(["-I", onnxRuntimeInclude] + gstreamerIncludes.flatMap { ["-Xcc", "-I\($0)"] })]

let package = Package(
    name: "Tributary",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Tributary", targets: ["Tributary"]),
        .executable(name: "imagedata-multistream", targets: ["imagedata-multistream"]),
        .executable(name: "tributary-benchmark", targets: ["tributary-benchmark"]),
        .executable(name: "tributary", targets: ["tributary"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // Thin C shim: GStreamer (core, app, video, pbutils, rtsp-server) plus static inline helpers
        // for what Swift cannot call directly (variadic functions, macros, casts).
        .systemLibrary(
            name: "CGStreamer",
            providers: [.apt(["libgstreamer1.0-dev", "libgstreamer-plugins-base1.0-dev", "libgstrtspserver-1.0-dev"])]
        ),
        // Cairo, for the OSD's boxes and labels on host frames.
        .systemLibrary(name: "CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
        // hiredis, for the Redis metadata sink (Redis Streams, XADD).
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // libmosquitto, for the MQTT metadata sink.
        .systemLibrary(name: "CMosquitto", providers: [.apt(["libmosquitto-dev"])]),
        // The CUDA driver API, loaded at run time through Debian's ffnvcodec loader header (so the
        // package builds and runs on machines without a GPU).
        .systemLibrary(name: "CCUDA", providers: [.apt(["libffmpeg-nvenc-dev"])]),
        .target(
            name: "Tributary",
            dependencies: [
                "CGStreamer",
                "CCairo",
                "CCUDA",
                "CHiredis",
                "CMosquitto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: headerSearchSettings
        ),
        // The service layer: DeepStream's REST API (Hummingbird), /metrics (swift-prometheus over
        // the framework's swift-metrics and its frame ledger), the cameras' table. Apart from the
        // framework, so that the framework and the sample app stay free of an HTTP stack.
        .target(
            name: "TributaryService",
            dependencies: [
                "Tributary",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: headerSearchSettings
        ),
        // The flags the executables share (ArgumentParser option groups).
        .target(
            name: "TributaryCLI",
            dependencies: [
                "Tributary",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: headerSearchSettings
        ),
        .executableTarget(
            name: "tributary",
            dependencies: [
                "Tributary",
                "TributaryCLI",
                "TributaryService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: headerSearchSettings
        ),
        // The sample's own behaviour over the framework's public API: its edit, its classes, its
        // frame saving (the app prints its lines).
        .target(name: "TributarySample", dependencies: ["Tributary"], swiftSettings: headerSearchSettings),
        .executableTarget(
            name: "imagedata-multistream",
            dependencies: [
                "Tributary",
                "TributaryCLI",
                "TributarySample",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: headerSearchSettings
        ),
        .executableTarget(
            name: "tributary-benchmark",
            dependencies: [
                "Tributary",
                "TributarySample",
                "CGStreamer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: headerSearchSettings
        ),
        // libFuzzer targets over the parsers (scripts/fuzz.sh builds them with -sanitize=fuzzer and
        // -DTRIBUTARY_FUZZ); in an ordinary build each replays the files it is given.
        .systemLibrary(name: "CLibFuzzer", path: "Sources/Fuzz/CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], path: "Sources/Fuzz/FuzzSupport"),
        .executableTarget(name: "fuzz-infer-config", dependencies: ["Tributary", "FuzzSupport"],
                          path: "Sources/Fuzz/infer-config", swiftSettings: headerSearchSettings),
        .executableTarget(name: "fuzz-analytics-config", dependencies: ["Tributary", "FuzzSupport"],
                          path: "Sources/Fuzz/analytics-config", swiftSettings: headerSearchSettings),
        .executableTarget(name: "fuzz-source-uri", dependencies: ["Tributary", "FuzzSupport"],
                          path: "Sources/Fuzz/source-uri", swiftSettings: headerSearchSettings),
        .executableTarget(name: "fuzz-stream-request", dependencies: ["TributaryService", "FuzzSupport"],
                          path: "Sources/Fuzz/stream-request", swiftSettings: headerSearchSettings),
        .testTarget(
            name: "TributaryTests",
            dependencies: ["Tributary", "TributarySample", "CGStreamer"],
            swiftSettings: headerSearchSettings
        ),
        .testTarget(
            name: "TributaryServiceTests",
            dependencies: ["Tributary", "TributaryService", "CGStreamer", .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: headerSearchSettings
        ),
    ]
)
