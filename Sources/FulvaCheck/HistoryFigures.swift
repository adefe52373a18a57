// The numbers a migration report is made of, all computed from the
// client-side history (DESIGN §6): what a client saw is what counts, not
// what the servers believe they did.

import Foundation

/// Latency percentiles (nearest rank) of the operations that got a reply.
public struct LatencyPercentiles: Hashable, Sendable {
    public var count: Int
    /// Nanoseconds.
    public var p50: Int64
    public var p99: Int64
    public var p999: Int64

    /// Nil when `latencies` is empty. Nearest rank (no interpolation): every
    /// figure is a latency some operation actually had. Ranks are computed
    /// in integers: ⌈p·n⌉ in floating point is off by one for some n.
    public init?(_ latencies: [Int64]) {
        guard !latencies.isEmpty else { return nil }
        let sorted = latencies.sorted()
        func rank(perMille: Int) -> Int64 { sorted[max(1, (perMille * sorted.count + 999) / 1000) - 1] }
        count = sorted.count
        p50 = rank(perMille: 500)
        p99 = rank(perMille: 990)
        p999 = rank(perMille: 999)
    }
}

/// Figures for one `OperationKind`. Operations are counted as recorded: a
/// multi-key operation counts once per key.
public struct KindFigures: Hashable, Sendable {
    public var kind: OperationKind
    public var count: Int
    public var failed: Int
    public var meanRoundTrips: Double
    public var maxRoundTrips: Int
    /// Longest interval (ns) with no operation of this kind completing with a
    /// reply on the migrating tablet, within the run's window: what a client
    /// of the tablet perceives as downtime. Nil when no operation of the kind
    /// touched the tablet (nothing was asked, so nothing was unavailable).
    public var longestGapInRun: Int64?
    /// The same within the migration window; nil also without a timeline.
    public var longestGapInMigration: Int64?
}

/// Figures computed from a `History`, for reports. Deterministic: the same
/// history gives the same figures.
public struct HistoryFigures: Hashable, Sendable, CustomStringConvertible {
    public var totalOperations: Int
    /// Operations whose client never learned the outcome.
    public var failedOperations: Int
    /// One entry per kind present in the history, in `OperationKind.allCases` order.
    public var kinds: [KindFigures]
    /// [first invocation, last completion] of the run; nil for an empty
    /// history. Failed operations never complete (as for the checker): when
    /// a client gave up says nothing about the system.
    public var runWindow: ClosedRange<Int64>?
    /// The timeline's window, open ends closed by the run's; nil without a timeline.
    public var migrationWindow: ClosedRange<Int64>?
    /// Share of reads (read and multiRead) sent to source and destination at
    /// once; nil without reads.
    public var dualReadShare: Double?
    public var priorityFetches: Int
    /// Migration-progress bytes carried per reply: the protocol's overhead on
    /// the wire. Nil when no reply was recorded.
    public var progressBytesPerReply: Double?
    /// Latencies of replied operations by invocation time relative to the
    /// migration window; nil without a timeline or when a phase is empty.
    public var latencyBefore: LatencyPercentiles?
    public var latencyDuring: LatencyPercentiles?
    public var latencyAfter: LatencyPercentiles?
    /// Latencies of all replied operations.
    public var latencyOverall: LatencyPercentiles?

    public init(_ history: History) {
        let ops = history.operations
        totalOperations = ops.count
        failedOperations = ops.count(where: \.failed)

        if let start = ops.map(\.invokedAt).min(), let end = ops.map({ $0.failed ? $0.invokedAt : $0.completedAt }).max() {
            runWindow = start...end
        }
        let timeline = history.timeline
        if let run = runWindow, timeline.startedAt != nil || timeline.endedAt != nil {
            let start = timeline.startedAt ?? run.lowerBound, end = timeline.endedAt ?? run.upperBound
            migrationWindow = start <= end ? start...end : nil
        }

        kinds = OperationKind.allCases.compactMap { [runWindow, migrationWindow] kind in
            let ofKind = ops.filter { $0.kind == kind }
            guard !ofKind.isEmpty else { return nil }
            let onTablet = ofKind.filter(\.onMigratingTablet)
            let served = onTablet.filter { !$0.failed }.map(\.completedAt)
            return KindFigures(
                kind: kind, count: ofKind.count, failed: ofKind.count(where: \.failed),
                meanRoundTrips: Double(ofKind.reduce(0) { $0 + $1.routing.roundTrips }) / Double(ofKind.count),
                maxRoundTrips: ofKind.map(\.routing.roundTrips).max()!,
                longestGapInRun: onTablet.isEmpty ? nil : runWindow.map { Self.longestGap(served, in: $0).length },
                longestGapInMigration: onTablet.isEmpty ? nil
                    : migrationWindow.map { Self.longestGap(served, in: $0).length })
        }

        let reads = ops.filter { $0.kind == .read || $0.kind == .multiRead }
        dualReadShare = reads.isEmpty ? nil : Double(reads.count(where: \.routing.dualRead)) / Double(reads.count)
        priorityFetches = ops.reduce(0) { $0 + $1.routing.priorityFetches }
        let replies = ops.reduce(0) { $0 + $1.routing.replies }
        progressBytesPerReply = replies == 0 ? nil
            : Double(ops.reduce(0) { $0 + $1.routing.progressBytes }) / Double(replies)

        let replied = ops.filter { !$0.failed }
        latencyOverall = LatencyPercentiles(replied.map { $0.completedAt - $0.invokedAt })
        if migrationWindow != nil {
            // Open ends of the timeline stay open: an unfinished migration has no "after".
            let start = timeline.startedAt ?? .min, end = timeline.endedAt ?? .max
            func latencies(_ phase: (Int64) -> Bool) -> LatencyPercentiles? {
                LatencyPercentiles(replied.filter { phase($0.invokedAt) }.map { $0.completedAt - $0.invokedAt })
            }
            latencyBefore = latencies { $0 < start }
            latencyDuring = latencies { $0 >= start && $0 < end }
            latencyAfter = latencies { $0 >= end }
        }
    }

    /// Longest stretch of `window` containing none of `times`, counting the
    /// stretches from the window's start and to its end: its length and
    /// where it began.
    public static func longestGap(_ times: [Int64], in window: ClosedRange<Int64>) -> (length: Int64, start: Int64) {
        var previous = window.lowerBound
        var longest: (length: Int64, start: Int64) = (0, window.lowerBound)
        for time in times.filter(window.contains).sorted() {
            if time - previous > longest.length { longest = (time - previous, previous) }
            previous = time
        }
        if window.upperBound - previous > longest.length { longest = (window.upperBound - previous, previous) }
        return longest
    }

    /// A plain-text table; times in microseconds.
    public var description: String {
        func µs(_ ns: Int64?) -> String { ns.map { String(format: "%.1f", Double($0) / 1000) } ?? "-" }
        func percent(_ share: Double?) -> String { share.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
        func table(_ rows: [[String]]) -> [String] {
            let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max()! }
            return rows.map { row in
                row.enumerated().map { column, cell in
                    let pad = String(repeating: " ", count: widths[column] - cell.count)
                    return column == 0 ? cell + pad : pad + cell
                }.joined(separator: "  ")
            }
        }

        var lines = ["operations: \(totalOperations), failed: \(failedOperations)"]
        if let run = runWindow { lines.append("run: \(µs(run.upperBound - run.lowerBound)) µs") }
        if let migration = migrationWindow {
            lines.append("migration: \(µs(migration.upperBound - migration.lowerBound)) µs")
        }
        if !kinds.isEmpty {
            lines.append("")
            lines += table([["kind", "count", "failed", "rt mean", "rt max", "gap run µs", "gap migration µs"]]
                + kinds.map { figures in
                    [figures.kind.rawValue, "\(figures.count)", "\(figures.failed)",
                     String(format: "%.2f", figures.meanRoundTrips), "\(figures.maxRoundTrips)",
                     µs(figures.longestGapInRun), µs(figures.longestGapInMigration)]
                })
        }
        lines.append("")
        lines.append("dual reads: \(percent(dualReadShare)) of reads; priority fetches: \(priorityFetches); "
            + "progress bytes per reply: \(progressBytesPerReply.map { String(format: "%.2f", $0) } ?? "-")")
        let phases: [(String, LatencyPercentiles?)] = [
            ("before", latencyBefore), ("during", latencyDuring), ("after", latencyAfter), ("overall", latencyOverall),
        ]
        lines.append("")
        lines += table([["latency µs", "count", "p50", "p99", "p99.9"]] + phases.map { name, figures in
            [name, figures.map { "\($0.count)" } ?? "0", µs(figures?.p50), µs(figures?.p99), µs(figures?.p999)]
        })
        return lines.joined(separator: "\n")
    }
}
