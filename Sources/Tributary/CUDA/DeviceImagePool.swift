/// Pitched RGBA device images of one size, recycled: a decoded frame's slot returns to the pool
/// when the last stage lets go of the frame, so steady-state decoding allocates nothing. How many
/// exist is bounded by the muxer's and output queue's bounds.
package final class DeviceImagePool: @unchecked Sendable {
    package let device: CUDADevice
    package let width: Int
    package let height: Int
    private let free = Locked<[DeviceMemory]>([])

    package init(device: CUDADevice, width: Int, height: Int) {
        self.device = device
        self.width = width
        self.height = height
    }

    /// A slot, reused when one is free. The memory comes back through `PooledDeviceMemory`'s deinit.
    package func take() throws -> PooledDeviceMemory {
        if let memory = free.withValue({ $0.popLast() }) { return PooledDeviceMemory(memory: memory, pool: self) }
        return PooledDeviceMemory(memory: try device.allocatePitched(widthBytes: width * 4, height: height), pool: self)
    }

    fileprivate func giveBack(_ memory: DeviceMemory) {
        free.withValue { $0.append(memory) }
    }
}

/// One pool slot lent to an image.
package final class PooledDeviceMemory: ImageMemoryOwner, @unchecked Sendable {
    let memory: DeviceMemory
    private let pool: DeviceImagePool
    var address: DevicePointer { memory.address }
    var pitch: Int { memory.pitch }

    fileprivate init(memory: DeviceMemory, pool: DeviceImagePool) {
        self.memory = memory
        self.pool = pool
    }

    deinit { pool.giveBack(memory) }
}
