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
