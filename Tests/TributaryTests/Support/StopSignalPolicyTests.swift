import Testing
@testable import Tributary

/// When a second stop signal forces the exit, event by event on a manual time line.
struct StopSignalPolicyTests {
    let ms: UInt64 = 1_000_000

    @Test func theFirstSignalStopsCleanly() {
        var policy = StopSignalPolicy()
        #expect(policy.receive(fromTerminal: false, at: .init(nanoseconds: 0)) == .stop)
    }

    @Test func aCopyWithinTheGracePeriodIsTheSameRequest() {
        var policy = StopSignalPolicy()
        #expect(policy.receive(fromTerminal: false, at: .init(nanoseconds: 10 * ms)) == .stop)
        #expect(policy.receive(fromTerminal: false, at: .init(nanoseconds: 10 * ms + 50_000)) == .ignore)
        #expect(policy.receive(fromTerminal: false, at: .init(nanoseconds: 1_009 * ms)) == .ignore)
    }

    @Test func aSignalAfterTheGracePeriodExits() {
        var policy = StopSignalPolicy()
        _ = policy.receive(fromTerminal: false, at: .init(nanoseconds: 10 * ms))
        #expect(policy.receive(fromTerminal: false, at: .init(nanoseconds: 1_010 * ms)) == .exitNow)
    }

    @Test func aSecondCtrlCAtTheTerminalExitsAtOnce() {
        var policy = StopSignalPolicy()
        _ = policy.receive(fromTerminal: true, at: .init(nanoseconds: 0))
        #expect(policy.receive(fromTerminal: true, at: .init(nanoseconds: 100 * ms)) == .exitNow)
    }

    @Test func theGracePeriodIsAParameter() {
        var policy = StopSignalPolicy(graceNanoseconds: 5 * ms)
        _ = policy.receive(fromTerminal: false, at: .init(nanoseconds: 0))
        #expect(policy.receive(fromTerminal: false, at: .init(nanoseconds: 4 * ms)) == .ignore)
        #expect(policy.receive(fromTerminal: false, at: .init(nanoseconds: 5 * ms)) == .exitNow)
    }
}
