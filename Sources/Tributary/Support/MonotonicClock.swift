#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A point on a monotonic time line, in nanoseconds. Plain integers keep the muxer's state machine
/// free of any real clock, so tests drive it with a manual one.
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    public static func < (a: Self, b: Self) -> Bool { a.nanoseconds < b.nanoseconds }
    public func advanced(byNanoseconds delta: UInt64) -> Self { Self(nanoseconds: nanoseconds &+ delta) }
    public func nanoseconds(since earlier: Self) -> UInt64 { nanoseconds >= earlier.nanoseconds ? nanoseconds - earlier.nanoseconds : 0 }
    public var seconds: Double { Double(nanoseconds) / 1e9 }
    public var description: String { "\(nanoseconds)ns" }
}

/// Where stages read the time. Injected so tests can use `ManualClock`.
public protocol TimeSource: Sendable {
    func now() -> MonotonicInstant
}

extension MonotonicInstant {
    /// Now on one of the kernel's clocks.
    static func now(_ clock: clockid_t) -> Self {
        var spec = timespec()
        clock_gettime(clock, &spec)
        return Self(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
    }
}

/// CLOCK_MONOTONIC.
public struct MonotonicClock: TimeSource {
    public init() {}
    public func now() -> MonotonicInstant { .now(CLOCK_MONOTONIC) }
}

/// A clock that moves only when told to; for tests.
public final class ManualClock: TimeSource, @unchecked Sendable {
    private let current: Locked<MonotonicInstant>
    public init(start: MonotonicInstant = MonotonicInstant(nanoseconds: 1_000_000_000)) { current = Locked(start) }
    public func now() -> MonotonicInstant { current.withValue { $0 } }
    public func advance(byMicroseconds microseconds: UInt64) {
        current.withValue { $0 = $0.advanced(byNanoseconds: microseconds * 1000) }
    }
}

/// CLOCK_BOOTTIME: CLOCK_MONOTONIC that also counts a suspend of the host, for lease deadlines
/// (a worker whose host slept must not take its leases for fresh).
public struct BootTimeClock: TimeSource {
    public init() {}
    public func now() -> MonotonicInstant { .now(CLOCK_BOOTTIME) }
}
