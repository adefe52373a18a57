import Foundation
import FulvaCheck
import Histogram

/// One operation of the benchmark's load, as fulva-bench-client writes it
/// (CShims/ramcloud/bench/FulvaBenchClient.cc, struct OperationRecord):
/// 24 bytes, little-endian, times on CLOCK_MONOTONIC.
public struct BenchOperation: Sendable, Equatable {
    public enum Kind: UInt8, Sendable, Codable, CaseIterable {
        case read = 0
        case write = 1
    }

    public var start: UInt64
    public var end: UInt64
    public var kind: Kind
    /// The key's hash lies in the migrating range.
    public var migrating: Bool
    /// An error, or no answer within the client's timeout.
    public var failed: Bool

    public static let encodedSize = 24
    static let migratingFlag: UInt8 = 1
    static let failedFlag: UInt8 = 2

    public init(start: UInt64, end: UInt64, kind: Kind, migrating: Bool, failed: Bool = false) {
        self.start = start
        self.end = end
        self.kind = kind
        self.migrating = migrating
        self.failed = failed
    }

    public var latency: UInt64 { end >= start ? end - start : 0 }

    /// The records of a client's output file; a torn last record (a client
    /// killed mid-write) is an error, not a silent truncation.
    public static func decode(_ data: Data) throws(BenchError) -> [BenchOperation] {
        guard data.count % encodedSize == 0 else {
            throw BenchError("an operation file of \(data.count) bytes is not a whole number of \(encodedSize)-byte records")
        }
        var operations: [BenchOperation] = []
        operations.reserveCapacity(data.count / encodedSize)
        var failure: BenchError?
        data.withUnsafeBytes { raw in
            for offset in stride(from: 0, to: raw.count, by: encodedSize) {
                let start = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                let end = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
                let kindByte = raw[offset + 16]
                let flags = raw[offset + 17]
                guard let kind = Kind(rawValue: kindByte) else {
                    failure = BenchError("operation \(offset / encodedSize) has unknown kind \(kindByte)")
                    return
                }
                operations.append(BenchOperation(start: start, end: end, kind: kind,
                                                 migrating: flags & migratingFlag != 0,
                                                 failed: flags & failedFlag != 0))
            }
        }
        if let failure { throw failure }
        return operations
    }

    /// The 24 bytes fulva-bench-client writes for this operation.
    public var encoded: Data {
        var data = Data(count: Self.encodedSize)
        data.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: start.littleEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: end.littleEndian, toByteOffset: 8, as: UInt64.self)
            raw[16] = kind.rawValue
            raw[17] = (migrating ? Self.migratingFlag : 0) | (failed ? Self.failedFlag : 0)
        }
        return data
    }
}

public struct BenchError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A stretch of CLOCK_MONOTONIC time, in nanoseconds.
public struct TimeWindow: Codable, Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    public init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = max(start, end)
    }
    public var nanoseconds: UInt64 { end - start }
    public func contains(_ t: UInt64) -> Bool { t >= start && t <= end }
}

/// Latency percentiles from an HDR histogram, in microseconds.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var count: UInt64
    public var p50Micros: Double
    public var p99Micros: Double
    public var p999Micros: Double
    public var maxMicros: Double

    /// Latencies in nanoseconds; nil when there are none.
    init?(_ histogram: Histogram<UInt64>) {
        guard histogram.totalCount > 0 else { return nil }
        count = histogram.totalCount
        p50Micros = Double(histogram.valueAtPercentile(50)) / 1000
        p99Micros = Double(histogram.valueAtPercentile(99)) / 1000
        p999Micros = Double(histogram.valueAtPercentile(99.9)) / 1000
        maxMicros = Double(histogram.max) / 1000
    }
}

/// Operations that completed in one interval of a run, for the
/// migrating range or the rest of the table.
public struct IntervalFigures: Codable, Sendable, Equatable {
    public var operations: Int
    public var failed: Int
    public var operationsPerSecond: Double
    public var latency: LatencySummary?
}

/// One interval of the time series (100 ms by default), measured from the
/// moment the load began.
public struct SeriesPoint: Codable, Sendable, Equatable {
    public var offsetMillis: Double
    public var migrating: IntervalFigures
    public var rest: IntervalFigures
    public var all: IntervalFigures
}

/// What one run's client histories show, over the run and over its window
/// (the migration; for the baseline, the same stretch of its load).
public struct RunFigures: Codable, Sendable, Equatable {
    public var operations: Int
    public var failed: Int
    public var reads: Int
    /// Offsets of the window from the start of the load, in ms.
    public var windowStartMillis: Double
    public var windowEndMillis: Double
    /// Operations that completed in the window, all keys and the migrating range.
    public var window: IntervalFigures
    public var windowMigrating: IntervalFigures
    /// Per operation kind: the longest stretch of the window in which no
    /// operation of that kind on the migrating range completed
    /// successfully (window edges count as completions), in ms.
    public var longestGapMillis: [String: Double]
    /// Where each of those gaps began, in ms from the start of the load.
    public var longestGapStartMillis: [String: Double]
    public var series: [SeriesPoint]

    /// The longest gap of any kind.
    public var longestGapAnyKindMillis: Double { longestGapMillis.values.max() ?? 0 }
}

public enum BenchFigures {
    static func histogram() -> Histogram<UInt64> {
        // 1 µs ... 60 s at 3 significant digits.
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                          numberOfSignificantValueDigits: .three)
    }

    static func interval(_ operations: some Sequence<BenchOperation>, seconds: Double) -> IntervalFigures {
        var h = histogram()
        var count = 0, failed = 0
        for op in operations {
            count += 1
            if op.failed { failed += 1; continue }
            _ = h.record(min(max(op.latency, 1), 60_000_000_000))
        }
        return IntervalFigures(operations: count, failed: failed,
                               operationsPerSecond: seconds > 0 ? Double(count - failed) / seconds : 0,
                               latency: LatencySummary(h))
    }

    /// The figures of one run: `loadStart` is when the clients began,
    /// `window` the migration (or the baseline's matching stretch).
    public static func run(_ operations: [BenchOperation], loadStart: UInt64, window: TimeWindow,
                           intervalNanos: UInt64 = 100_000_000) -> RunFigures {
        let windowSeconds = Double(window.nanoseconds) / 1e9
        let inWindow = operations.filter { window.contains($0.end) }
        var gaps: [String: Double] = [:], gapStarts: [String: Double] = [:]
        for kind in BenchOperation.Kind.allCases {
            let ends = inWindow.filter { $0.kind == kind && $0.migrating && !$0.failed }.map { Int64($0.end) }
            let gap = HistoryFigures.longestGap(ends, in: Int64(window.start)...Int64(window.end))
            gaps["\(kind)"] = Double(gap.length) / 1e6
            gapStarts["\(kind)"] = Double(gap.start - Int64(loadStart)) / 1e6
        }
        // The series: operations by the interval they completed in.
        var buckets: [[BenchOperation]] = []
        for op in operations where op.end >= loadStart {
            let index = Int((op.end - loadStart) / intervalNanos)
            if index >= buckets.count { buckets.append(contentsOf: Array(repeating: [], count: index + 1 - buckets.count)) }
            buckets[index].append(op)
        }
        let seconds = Double(intervalNanos) / 1e9
        let series = buckets.enumerated().map { index, ops in
            SeriesPoint(offsetMillis: Double(UInt64(index) * intervalNanos) / 1e6,
                        migrating: interval(ops.lazy.filter(\.migrating), seconds: seconds),
                        rest: interval(ops.lazy.filter { !$0.migrating }, seconds: seconds),
                        all: interval(ops, seconds: seconds))
        }
        return RunFigures(
            operations: operations.count, failed: operations.filter(\.failed).count,
            reads: operations.filter { $0.kind == .read }.count,
            windowStartMillis: Double(Int64(window.start) - Int64(loadStart)) / 1e6,
            windowEndMillis: Double(Int64(window.end) - Int64(loadStart)) / 1e6,
            window: interval(inWindow, seconds: windowSeconds),
            windowMigrating: interval(inWindow.lazy.filter(\.migrating), seconds: windowSeconds),
            longestGapMillis: gaps, longestGapStartMillis: gapStarts, series: series)
    }
}
