import Foundation
import Testing
@testable import Tributary

/// A limit on the time a test's own body runs, to catch a hang with the test's name.
///
/// Not `.timeLimit`: Swift Testing starts every test of a parallel run at once and runs their
/// bodies as the cooperative pool (one thread a core) frees up, and `.timeLimit` counts that wait
/// too — on a two-core CI machine tests of a second were failed for the minutes they had queued
/// behind the media tests. This clock starts when the body starts. A synchronous body cannot be
/// cancelled, so a body past its limit is taken as hung: the process says which test and ends
/// with exit 124 rather than waiting for the CI job's own limit.
struct RunningTimeLimit: TestTrait, TestScoping {
    let minutes: Int

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        let done = Locked(false)
        let name = test.name, limit = minutes
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(minutes * 60)) {
            guard !done.withValue({ $0 }) else { return }
            FileHandle.standardError.write(Data("✘ \(name) ran for \(limit) min and is taken as hung; the test run is ended\n".utf8))
            exit(124)
        }
        defer { done.withValue { $0 = true } }
        try await function()
    }
}

extension Trait where Self == RunningTimeLimit {
    /// At most `minutes` of the test body's own running time (see `RunningTimeLimit`).
    static func runningTimeLimit(minutes: Int) -> Self { RunningTimeLimit(minutes: minutes) }
}
