import Foundation
import FulvaCheck
import FulvaCluster

#if canImport(Glibc)
import Glibc
#endif

/// The stretches in which a RAMCloud process's dispatch thread did not run,
/// as the process itself logs them ("Long gap in dispatcher: N ms", at the
/// end of the gap, wall-clock seconds). On the 2-core test host every
/// process of a cluster sometimes stalls together for seconds (seen: 2.2 s
/// at the coordinator and 2.8 s at a master, at once). An operation that
/// had no answer within its deadline while stalls of two processes covered
/// it is the host's, not the protocol's (one master's stall alone could be
/// its own doing): tests excuse it (and count it), and it stays in the
/// history as one of unknown outcome, which the linearizability check
/// covers.
struct DispatcherStalls {
    /// CLOCK_MONOTONIC nanoseconds, as the histories' times.
    var stalls: [(process: String, start: Int64, end: Int64)] = []

    /// Stalls of at least `minimumMillis` in the logs of the cluster's processes.
    init(_ state: ClusterState, minimumMillis: Double = 500) {
        self.init(logs: state.processes.map { ($0.name, $0.log) }, minimumMillis: minimumMillis)
    }

    /// Stalls of at least `minimumMillis` in these processes' log files.
    init(logs: [(process: String, path: String)], minimumMillis: Double = 500) {
        var now = timespec(), monotonic = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        let offset = (Int64(now.tv_sec) - Int64(monotonic.tv_sec)) * 1_000_000_000 + Int64(now.tv_nsec) - Int64(monotonic.tv_nsec)
        for process in logs {
            guard let log = try? String(contentsOfFile: process.path, encoding: .utf8) else { continue }
            for line in log.split(separator: "\n") where line.contains("Long gap in dispatcher: ") {
                // "<seconds> ... Long gap in dispatcher: <N> ms"
                let fields = line.split(separator: " ")
                guard let stamp = fields.first.flatMap({ Double($0) }), fields.count >= 2,
                      let millis = Double(fields[fields.count - 2]), millis >= minimumMillis else { continue }
                let end = Int64(stamp * 1e9) - offset
                stalls.append((process.process, end - Int64(millis * 1e6), end))
            }
        }
    }

    /// Whether stalls of two or more processes overlap the operation's time.
    func covers(_ operation: RecordedOperation) -> Bool {
        let stalled = stalls.filter { $0.start <= operation.completedAt && operation.invokedAt <= $0.end }
        return Set(stalled.map(\.process)).count >= 2
    }

    /// The failed operations a stall does not explain.
    func unexplained(_ failed: [RecordedOperation]) -> [RecordedOperation] {
        failed.filter { !covers($0) }
    }
}
