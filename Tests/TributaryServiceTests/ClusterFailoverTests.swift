import Foundation
import Testing

/// Issue 19's acceptance across hosts: `tests/cluster/failover.py` builds the hosts as network
/// namespaces on a bridge of their own (Redis, three RTSP cameras, four workers, a probe), runs the
/// real `tributary worker`s and checks — every 200 ms, from Redis and each worker's REST — that a
/// camera never has two owners through a start, a SIGKILL, a SIGSTOP, a cut link, a fourth worker
/// and a Redis restart; that failover takes under 10 s; that a stale worker's messages are refused.
/// An independent checker (Python, its own RESP client), so it needs root and `ip netns`.
@Suite(.serialized) struct ClusterFailoverTests {
    @Test(.timeLimit(.minutes(6)))
    func workersOnTheirOwnHostsShareTheCamerasAndFailOverFenced() throws {
        try ServicePaths.requireMedia()
        #expect(getuid() == 0, "network namespaces need root")
        // A copy of the binary: the workers run for minutes, and a rebuild must not swap it under them.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let binary = directory.appendingPathComponent("tributary").path
        try FileManager.default.copyItem(atPath: ServicePaths.binary, toPath: binary)
        let summary = directory.appendingPathComponent("summary.md").path
        let harness = try RunningProcess("/usr/bin/python3", [ServicePaths.path("tests/cluster/failover.py"), "--binary", binary,
                                                               "--summary", summary, "--workdir", directory.appendingPathComponent("run").path])
        #expect(waitFor(timeout: 330) { !harness.process.isRunning }, "the harness ran past its bound")
        if harness.process.isRunning { _ = harness.stop(SIGINT) }
        harness.process.waitUntilExit()
        let table = (try? String(contentsOfFile: summary, encoding: .utf8)) ?? harness.standardOutput
        print(table)
        #expect(harness.process.terminationStatus == 0, "\(table)\n\(harness.standardError.suffix(3000))")
        // The table names every case and says PASS for each.
        for row in ["1 start", "2 SIGKILL", "3 SIGSTOP", "4 veth cut", "5 a fourth worker", "6 Redis down"] {
            #expect(table.split(separator: "\n").contains { $0.contains(row) && $0.contains("| PASS |") }, "\(row): \(table)")
        }
    }
}
