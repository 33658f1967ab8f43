import Testing
@testable import Tributary
#if canImport(Glibc)
import Glibc
#endif

/// The child processes of `--process-per-gpu` and the benchmark's `per-gpu` rows.
struct ChildProcessTests {
    /// A line through each pipe and the child's own exit status back.
    @Test func talksThroughPipesAndGivesItsExitStatus() throws {
        let child = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "echo ready; read word; echo \"got $word\"; exit 3"], pipes: true)
        #expect(child.readLine() == "ready")
        child.send("go")
        #expect(child.readLine() == "got go")
        #expect(child.readLine() == nil)
        #expect(child.wait() == 3)
    }

    /// In its own process group it keeps running until a signal is passed on, and its status
    /// says which signal ended it.
    @Test func aSignalPassedOnEndsIt() throws {
        let child = try ChildProcess(executable: "/bin/sleep", arguments: ["30"], pipes: false, newProcessGroup: true)
        #expect(getpgid(child.pid) == child.pid)
        child.signal(SIGTERM)
        #expect(child.wait() == 128 + SIGTERM)
    }

    @Test func aMissingExecutableIsAnError() {
        #expect(throws: PipelineError.self) { try ChildProcess(executable: "/no/such/program", arguments: [], pipes: false) }
    }

    /// The group's status: a child ended by a signal first, else the first failure, else 0.
    @Test func theGroupsExitStatusFollowsTheChildren() {
        #expect(ShardProcesses.exitStatus([0, 0]) == 0)
        #expect(ShardProcesses.exitStatus([0, 1, 2]) == 1)
        #expect(ShardProcesses.exitStatus([1, 130]) == 130, "a signal's status wins over a failure")
        #expect(ShardProcesses.exitStatus([]) == 0)
    }
}
