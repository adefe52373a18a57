import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fulva-workload summary` with the migration given as its record (what
/// the demos pass): the record's wall-clock window must land on the
/// history's CLOCK_MONOTONIC times, and the exit status is the demo's
/// verdict. Needs no cluster.
@Suite struct WorkloadSummaryTests {
    struct Phase: Decodable { var operations: Int }
    struct Output: Decodable { var operations: Int; var failed: Int; var before: Phase?; var during: Phase?; var after: Phase? }

    static func nanos(_ clock: clockid_t) -> Int64 {
        var t = timespec()
        clock_gettime(clock, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    /// Runs summary over a history of 3 operations before, 2 during and 1
    /// after a migration window of one second that ended a second ago.
    func summarize(phase: String, failedDuring: Bool = false) throws -> (status: Int32, output: Output?) {
        let workload = try #require(ClientProgram.workload, "fulva-workload is not built next to the tests")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("summary-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let monotonic = Self.nanos(CLOCK_MONOTONIC)
        let offset = Self.nanos(CLOCK_REALTIME) - monotonic
        let start = monotonic - 2_000_000_000, end = monotonic - 1_000_000_000
        let ms: Int64 = 1_000_000
        let operations: [(Int64, Bool)] = [
            (start - 900 * ms, false), (start - 600 * ms, false), (start - 300 * ms, false),
            (start + 300 * ms, failedDuring), (start + 600 * ms, false),
            (end + 300 * ms, false),
        ]
        let history = operations.map { at, failed in
            "{\"kind\":\"read\",\"start\":\(at),\"end\":\(at + 100_000),\"failed\":\(failed)}"
        }.joined(separator: "\n") + "\n"
        try history.write(to: directory.appendingPathComponent("history"), atomically: true, encoding: .utf8)
        let migration = """
            {"id":7,"phase":"\(phase)","source":1,"destination":2,"objectsMoved":10,"bytesMoved":1000,\
            "createdAtMillis":\((start + offset) / ms),"updatedAtMillis":\((end + offset) / ms)}
            """
        try migration.write(to: directory.appendingPathComponent("migration.json"), atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: workload)
        process.arguments = ["summary", "--history", directory.appendingPathComponent("history").path,
                             "--migration", directory.appendingPathComponent("migration.json").path, "--json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, try? JSONDecoder().decode(Output.self, from: data))
    }

    @Test func theRecordsWindowFallsOnTheHistorysClock() throws {
        let (status, output) = try summarize(phase: "done")
        let summary = try #require(output)
        #expect(status == 0)
        #expect(summary.operations == 6 && summary.failed == 0)
        #expect(summary.before?.operations == 3)
        #expect(summary.during?.operations == 2)
        #expect(summary.after?.operations == 1)
    }

    @Test func aMigrationNotDoneOrAFailedOperationFailsTheSummary() throws {
        #expect(try summarize(phase: "failed").status == 1)
        let (status, output) = try summarize(phase: "done", failedDuring: true)
        #expect(status == 1)
        #expect(output?.failed == 1)
    }
}
