import Foundation
import Testing

@testable import FulvaBench

/// The benchmark's figures from hand-made client histories whose answers
/// are known.
struct BenchFiguresTests {
    let ms: UInt64 = 1_000_000

    @Test func recordsRoundTripThroughTheClientsByteLayout() throws {
        let ops = [
            BenchOperation(start: 1, end: 2, kind: .read, migrating: true),
            BenchOperation(start: .max - 5, end: .max, kind: .write, migrating: false, failed: true),
        ]
        let data = ops.map(\.encoded).reduce(Data(), +)
        #expect(data.count == 48)
        // The C client's layout: start, end, kind byte, flags byte, padding.
        #expect(data[16] == 0 && data[17] == 1 && data[40] == 1 && data[41] == 2)
        #expect(try BenchOperation.decode(data) == ops)
        #expect(throws: BenchError.self) { try BenchOperation.decode(data.dropLast()) }
        var badKind = data
        badKind[16] = 7
        #expect(throws: BenchError.self) { try BenchOperation.decode(badKind) }
    }

    @Test func theLongestGapCountsTheWindowEdgesAndOnlySuccessfulOperationsOfThatKindOnTheMigratingRange() {
        let window = TimeWindow(start: 1000 * ms, end: 2000 * ms)
        var ops: [BenchOperation] = []
        // Reads every 10 ms except a 300 ms hole at 1400...1700.
        for t in stride(from: 1000, through: 2000, by: 10) where !(1400 < t && t < 1700) {
            ops.append(BenchOperation(start: UInt64(t) * ms - 100, end: UInt64(t) * ms, kind: .read, migrating: true))
        }
        // Failed reads and reads of the rest inside the hole do not fill it.
        ops.append(BenchOperation(start: 1500 * ms, end: 1550 * ms, kind: .read, migrating: true, failed: true))
        ops.append(BenchOperation(start: 1500 * ms, end: 1550 * ms, kind: .read, migrating: false))
        // Writes only at 1100 and 1200: the gap runs to the window's end.
        ops.append(BenchOperation(start: 1090 * ms, end: 1100 * ms, kind: .write, migrating: true))
        ops.append(BenchOperation(start: 1190 * ms, end: 1200 * ms, kind: .write, migrating: true))
        let f = BenchFigures.run(ops, loadStart: 0, window: window)
        #expect(f.longestGapMillis["read"] == 300 && f.longestGapStartMillis["read"] == 1400)
        #expect(f.longestGapMillis["write"] == 800 && f.longestGapStartMillis["write"] == 1200)
        #expect(f.longestGapAnyKindMillis == 800)
        #expect(f.failed == 1)
        #expect(f.windowStartMillis == 1000 && f.windowEndMillis == 2000)
    }

    @Test func aWindowWithNoCompletionIsOneGapAsLongAsTheWindow() {
        let f = BenchFigures.run([], loadStart: 0, window: TimeWindow(start: 5 * ms, end: 505 * ms))
        #expect(f.longestGapMillis["read"] == 500)
        #expect(f.window.operations == 0 && f.window.latency == nil)
    }

    @Test func theSeriesHasOnePointPer100msWithThroughputAndPercentilesPerPart() throws {
        var ops: [BenchOperation] = []
        // Interval 0: 10 migrating reads of 100 µs, 5 of the rest of 1 ms.
        for i in 0..<10 { ops.append(BenchOperation(start: UInt64(i) * ms, end: UInt64(i) * ms + 100_000, kind: .read, migrating: true)) }
        for i in 0..<5 { ops.append(BenchOperation(start: UInt64(i) * ms, end: UInt64(i + 1) * ms, kind: .write, migrating: false)) }
        // Interval 2 (200...300 ms): one migrating operation of 10 ms; interval 1 is empty.
        ops.append(BenchOperation(start: 240 * ms, end: 250 * ms, kind: .read, migrating: true))
        let f = BenchFigures.run(ops, loadStart: 0, window: TimeWindow(start: 0, end: 300 * ms))
        #expect(f.series.count == 3)
        #expect(f.series.map(\.offsetMillis) == [0, 100, 200])
        let first = f.series[0]
        #expect(first.migrating.operations == 10 && first.rest.operations == 5 && first.all.operations == 15)
        #expect(first.migrating.operationsPerSecond == 100)
        #expect(first.rest.operationsPerSecond == 50)
        // HDR percentiles within 0.1%.
        let m = try #require(first.migrating.latency)
        #expect(abs(m.p50Micros - 100) <= 0.1 && abs(m.p99Micros - 100) <= 0.1)
        #expect(abs(try #require(first.rest.latency).p99Micros - 1000) <= 1)
        #expect(f.series[1].all.operations == 0 && f.series[1].all.latency == nil)
        #expect(abs(try #require(f.series[2].migrating.latency).p999Micros - 10_000) <= 10)
        #expect(f.window.operations == 16)
        #expect(abs(f.window.operationsPerSecond - 16 / 0.3) < 1e-9)
    }

    func run(_ name: String, opsPerSecond: Double, p99: Double, gap: Double, failed: Int = 0, migration: Bool)
        -> BenchRun {
        let latency = LatencySummaryForTests.make(p99: p99)
        let window = IntervalFigures(operations: 1000, failed: failed, operationsPerSecond: opsPerSecond, latency: latency)
        let figures = RunFigures(operations: 1000, failed: failed, reads: 900, windowStartMillis: 0, windowEndMillis: 1000,
                                 window: window, windowMigrating: window,
                                 longestGapMillis: ["read": gap, "write": gap / 2],
                                 longestGapStartMillis: ["read": 0, "write": 0], series: [])
        let m = migration ? MigrationFigures(id: 1, source: 1, destination: 2, seconds: 2, bytes: 100_000_000,
                                             objects: 1, ceiling: TransferCeiling(source: 1, destination: 2,
                                                                                  bytes: 200_000_000, seconds: 1,
                                                                                  chunkBytes: 1, outstanding: 1),
                                             priorityPulls: 3) : nil
        var clients = ClientTotals.zero
        clients.operations = 1000
        clients.networkInputBytes = 100_000
        clients.networkOutputBytes = 50_000
        clients.shim.dualReads = 90
        return BenchRun(name: name, figures: figures, migration: m, clients: clients)
    }

    @Test func comparisonsHoldEachStrategyToFulvasTargetsAgainstTheBaseline() throws {
        let baseline = run("baseline", opsPerSecond: 10_000, p99: 400, gap: 10, migration: false)
        let good = run("fulva", opsPerSecond: 9_500, p99: 500, gap: 15, migration: true)
        let bad = run("source", opsPerSecond: 5_000, p99: 900, gap: 3000, failed: 2, migration: true)
        let report = BenchReport(configuration: BenchConfiguration(
            transport: "udp", records: 1000, valueBytes: 100, readRatio: 0.95, distribution: "zipf", zipfTheta: 0.99,
            clients: 2, outstanding: 1, migrateAfterSeconds: 5, tailSeconds: 3, migratingShare: 0.99, firstKeyHash: 0,
            lastKeyHash: 1, partitions: 8, masterMemoryMB: 512, hostCores: 2),
            ceiling: TransferCeiling(source: 1, destination: 2, bytes: 200_000_000, seconds: 1, chunkBytes: 1,
                                     outstanding: 1),
            runs: [baseline, good, bad])
        #expect(report.comparisons.map(\.run) == ["fulva", "source"])
        let fulva = report.comparisons[0]
        #expect(abs(fulva.throughputRatio - 0.95) < 1e-9 && abs(fulva.p99Ratio - 1.25) < 1e-9)
        #expect(abs(fulva.longestGapRatio - 1.5) < 1e-9)
        #expect(fulva.targets.allSatisfy { $0.met })
        let source = report.comparisons[1]
        #expect(source.targets.filter { !$0.met }.map(\.name)
            == ["failed operations", "throughput / baseline", "longest gap / baseline", "p99 / baseline"])
        // Migration rate as a share of the ceiling; bytes per request.
        #expect(good.migration?.megabytesPerSecond == 50 && good.migration?.fractionOfCeiling == 0.25)
        #expect(good.clients.bytesPerRequest == 150)
        #expect(abs(good.dualReadShare - 0.1) < 1e-9)
        // The table names every run and each miss; the JSON reads back the same.
        let table = report.table
        for name in ["baseline", "fulva", "source", "every target met", "missed failed operations 2.00"] {
            #expect(table.contains(name), "\(name) in:\n\(table)")
        }
        #expect(try BenchReport.decode(try report.json()) == report)
    }
}

enum LatencySummaryForTests {
    static func make(p99: Double) -> LatencySummary? {
        var h = BenchFigures.histogram()
        for _ in 0..<100 { _ = h.record(UInt64(p99 * 1000)) }
        return LatencySummary(h)
    }
}
