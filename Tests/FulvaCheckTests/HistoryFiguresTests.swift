import FulvaCheck
import Testing

@Suite struct HistoryFiguresTests {
    /// Eight operations around a migration from t=100 to t=200, every figure
    /// worked out by hand.
    static let history = History(
        operations: [
            op(1, .read, found(1, 1), 0, 10),
            op(2, write(2), written(2), 50, 70),
            op(3, .read, found(2, 2), 110, 130,
               routing: OperationRouting(roundTrips: 2, dualRead: true, progressBytes: 8, replies: 2)),
            op(4, write(3), written(3), 120, 150,
               routing: OperationRouting(roundTrips: 2, priorityFetches: 1, progressBytes: 4)),
            op(5, .read, nil, 140, 145, routing: OperationRouting(roundTrips: 3, replies: 0)),
            op(6, .read, found(3, 3), 210, 220),
            op(7, .read, found(9, 1), 160, 170, key: "other", kind: .multiRead, onMigratingTablet: false,
               routing: OperationRouting(dualRead: true)),
            op(8, increment(1), incremented(4, 4), 230, 300),
        ],
        timeline: MigrationTimeline(startedAt: 100, endedAt: 200))

    @Test func figuresMatchTheHandComputedOnes() throws {
        let figures = HistoryFigures(Self.history)
        #expect(figures.totalOperations == 8)
        #expect(figures.failedOperations == 1)
        #expect(figures.runWindow == 0...300)
        #expect(figures.migrationWindow == 100...200)
        #expect(figures.kinds.map(\.kind) == [.read, .write, .increment, .multiRead])

        let read = try #require(figures.kinds.first { $0.kind == .read })
        #expect(read.count == 4 && read.failed == 1)
        #expect(read.meanRoundTrips == 1.75 && read.maxRoundTrips == 3)
        #expect(read.longestGapInRun == 120)  // completions 10, 130, 220 in [0, 300]
        #expect(read.longestGapInMigration == 70)  // 130 in [100, 200]

        let write = try #require(figures.kinds.first { $0.kind == .write })
        #expect(write.meanRoundTrips == 1.5 && write.maxRoundTrips == 2)
        #expect(write.longestGapInRun == 150 && write.longestGapInMigration == 50)

        let increment = try #require(figures.kinds.first { $0.kind == .increment })
        #expect(increment.longestGapInRun == 300 && increment.longestGapInMigration == 100)

        let multiRead = try #require(figures.kinds.first { $0.kind == .multiRead })
        #expect(multiRead.longestGapInRun == nil, "never on the migrating tablet")

        #expect(figures.dualReadShare == 0.4)  // 2 of 5 reads and multi-reads
        #expect(figures.priorityFetches == 1)
        #expect(figures.progressBytesPerReply == 1.5)  // 12 bytes over 8 replies

        // By invocation: before [1, 2], during [3, 4, 7], after [6, 8]; the failed read is left out.
        #expect(figures.latencyBefore == LatencyPercentiles([10, 20]))
        #expect(figures.latencyBefore.map { [Int64($0.count), $0.p50, $0.p99, $0.p999] } == [2, 10, 20, 20])
        #expect(figures.latencyDuring.map { [Int64($0.count), $0.p50, $0.p99, $0.p999] } == [3, 20, 30, 30])
        #expect(figures.latencyAfter.map { [Int64($0.count), $0.p50, $0.p99, $0.p999] } == [2, 10, 70, 70])
        #expect(figures.latencyOverall?.count == 7)
    }

    @Test func percentilesUseTheNearestRank() throws {
        let latencies = try #require(LatencyPercentiles((1...1_000).map { Int64($0) }))
        #expect([latencies.p50, latencies.p99, latencies.p999] == [500, 990, 999])
        #expect(LatencyPercentiles([]) == nil)
        // 0.99 × 100 is 99.00000000000001 in floating point; the rank is still 99.
        #expect(LatencyPercentiles((1...100).map { Int64($0) })?.p99 == 99)
        #expect(LatencyPercentiles([7])?.p999 == 7)
    }

    @Test func withoutTimelineThereAreNoPhases() {
        var history = Self.history
        history.timeline = MigrationTimeline()
        let figures = HistoryFigures(history)
        #expect(figures.migrationWindow == nil && figures.latencyDuring == nil)
        #expect(figures.kinds.allSatisfy { $0.longestGapInMigration == nil })
        #expect(HistoryFigures(History()).runWindow == nil)
    }

    @Test func tableNamesEveryKindAndPhase() {
        let text = HistoryFigures(Self.history).description
        print(text)
        for word in ["operations: 8, failed: 1", "increment", "multiRead", "dual reads: 40.0%", "p99.9", "during"] {
            #expect(text.contains(word), "\(word)")
        }
        #expect(text == HistoryFigures(Self.history).description, "deterministic")
    }
}
