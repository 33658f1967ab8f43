/// A dense float tensor, row-major, as the inference engine returns it (integer outputs such as
/// SSD class ids arrive converted to Float).
public struct Tensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var data: [Float]

    public init(name: String, shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "tensor \(name): shape \(shape) does not match \(data.count) values")
        self.name = name
        self.shape = shape
        self.data = data
    }

    public var elementCount: Int { data.count }
}

/// A float32 model output left in CUDA device memory (`InferenceEngine.withDeviceOutputs`): valid
/// only inside the closure that receives it.
public struct DeviceTensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var address: DevicePointer
    public var deviceID: Int

    public init(name: String, shape: [Int], address: DevicePointer, deviceID: Int) {
        self.name = name
        self.shape = shape
        self.address = address
        self.deviceID = deviceID
    }
}
