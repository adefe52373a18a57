import Foundation
import FulvaCheck
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// DispatcherStalls excuses a failed operation only when two processes'
/// logs show a dispatcher stall over it. Needs no cluster.
@Suite struct DispatcherStallsTests {
    @Test func onlyAStallOfTwoProcessesOverTheOperationExcusesIt() throws {
        var now = timespec(), monotonic = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        let wall = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        let mono = Int64(monotonic.tv_sec) * 1_000_000_000 + Int64(monotonic.tv_nsec)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stalls-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Both stalls end 10 s ago and last 2 s; a third, short one is ignored.
        func line(_ endedSecondsAgo: Double, _ millis: Double) -> String {
            String(format: "%.9f Dispatch.cc:207 in poll WARNING[1]: Long gap in dispatcher: %.2f ms", wall - endedSecondsAgo, millis)
        }
        let coordinator = directory.appendingPathComponent("coordinator.log").path
        let master = directory.appendingPathComponent("master1.log").path
        try [line(10, 2000), "1.0 other line"].joined(separator: "\n").write(toFile: coordinator, atomically: true, encoding: .utf8)
        try [line(10, 2000), line(30, 200)].joined(separator: "\n").write(toFile: master, atomically: true, encoding: .utf8)

        func operation(secondsAgo: Double) -> RecordedOperation {
            let at = mono - Int64(secondsAgo * 1e9)
            return RecordedOperation(id: 0, client: 0, kind: .read, key: "k", input: .read, output: nil,
                                     invokedAt: at, completedAt: at + 1_000_000_000)
        }
        let both = DispatcherStalls(logs: [("coordinator", coordinator), ("master1", master)])
        let one = DispatcherStalls(logs: [("master1", master)])
        #expect(both.covers(operation(secondsAgo: 11.5)), "both stalled over it")
        #expect(!one.covers(operation(secondsAgo: 11.5)), "one process alone excuses nothing")
        #expect(!both.covers(operation(secondsAgo: 20)), "no stall then")
        #expect(!both.covers(operation(secondsAgo: 30.5)), "a stall under 500 ms counts for nothing")
        #expect(both.unexplained([operation(secondsAgo: 11.5), operation(secondsAgo: 20)]).count == 1)
    }
}
