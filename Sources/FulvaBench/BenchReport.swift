import Foundation

/// What was run: the workload and the cluster.
public struct BenchConfiguration: Codable, Sendable, Equatable {
    public var transport: String
    public var records: Int
    public var valueBytes: Int
    public var readRatio: Double
    public var distribution: String
    public var zipfTheta: Double
    public var clients: Int
    public var outstanding: Int
    public var migrateAfterSeconds: Double
    public var tailSeconds: Double
    /// The share of the table's key-hash range that migrates.
    public var migratingShare: Double
    public var firstKeyHash: UInt64
    public var lastKeyHash: UInt64
    public var partitions: Int
    public var masterMemoryMB: Int
    public var hostCores: Int

    public init(transport: String, records: Int, valueBytes: Int, readRatio: Double, distribution: String,
                zipfTheta: Double, clients: Int, outstanding: Int, migrateAfterSeconds: Double, tailSeconds: Double,
                migratingShare: Double, firstKeyHash: UInt64, lastKeyHash: UInt64, partitions: Int,
                masterMemoryMB: Int, hostCores: Int) {
        self.transport = transport
        self.records = records
        self.valueBytes = valueBytes
        self.readRatio = readRatio
        self.distribution = distribution
        self.zipfTheta = zipfTheta
        self.clients = clients
        self.outstanding = outstanding
        self.migrateAfterSeconds = migrateAfterSeconds
        self.tailSeconds = tailSeconds
        self.migratingShare = migratingShare
        self.firstKeyHash = firstKeyHash
        self.lastKeyHash = lastKeyHash
        self.partitions = partitions
        self.masterMemoryMB = masterMemoryMB
        self.hostCores = hostCores
    }
}

/// The raw transfer rate between the two masters (the transfer probe).
public struct TransferCeiling: Codable, Sendable, Equatable {
    public var source: UInt64
    public var destination: UInt64
    public var bytes: UInt64
    public var seconds: Double
    public var chunkBytes: UInt32
    public var outstanding: UInt32
    public var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / 1e6 / seconds : 0 }

    public init(source: UInt64, destination: UInt64, bytes: UInt64, seconds: Double, chunkBytes: UInt32,
                outstanding: UInt32) {
        self.source = source
        self.destination = destination
        self.bytes = bytes
        self.seconds = seconds
        self.chunkBytes = chunkBytes
        self.outstanding = outstanding
    }

    enum CodingKeys: String, CodingKey { case source, destination, bytes, seconds, chunkBytes, outstanding, megabytesPerSecond }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(destination, forKey: .destination)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(chunkBytes, forKey: .chunkBytes)
        try c.encode(outstanding, forKey: .outstanding)
        try c.encode(megabytesPerSecond, forKey: .megabytesPerSecond)
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source = try c.decode(UInt64.self, forKey: .source)
        destination = try c.decode(UInt64.self, forKey: .destination)
        bytes = try c.decode(UInt64.self, forKey: .bytes)
        seconds = try c.decode(Double.self, forKey: .seconds)
        chunkBytes = try c.decode(UInt32.self, forKey: .chunkBytes)
        outstanding = try c.decode(UInt32.self, forKey: .outstanding)
    }
}

/// One migration of a run.
public struct MigrationFigures: Codable, Sendable, Equatable {
    public var id: UInt64?
    public var source: UInt64
    public var destination: UInt64
    public var seconds: Double
    /// Bytes moved: the destination's record for fulva and rocksteady; for
    /// RAMCloud's own migration (which reports none) the same tablet's
    /// size as another strategy's record measured it.
    public var bytes: UInt64
    public var objects: UInt64?
    public var megabytesPerSecond: Double
    public var fractionOfCeiling: Double?
    /// Keys the destination fetched from the source ahead of their batch.
    public var priorityPulls: Int?
    /// Why the migration failed (nil: it finished).
    public var error: String?

    public init(id: UInt64?, source: UInt64, destination: UInt64, seconds: Double, bytes: UInt64, objects: UInt64?,
                ceiling: TransferCeiling?, priorityPulls: Int?) {
        self.id = id
        self.source = source
        self.destination = destination
        self.seconds = seconds
        self.bytes = bytes
        self.objects = objects
        megabytesPerSecond = seconds > 0 ? Double(bytes) / 1e6 / seconds : 0
        if let ceiling, ceiling.megabytesPerSecond > 0 {
            fractionOfCeiling = megabytesPerSecond / ceiling.megabytesPerSecond
        }
        self.priorityPulls = priorityPulls
    }
}

/// What the clients themselves counted (fulva-bench-client's totals).
public struct ClientTotals: Codable, Sendable, Equatable {
    public var operations: Int
    public var failed: Int
    public var timedOut: Int
    public var networkInputBytes: UInt64
    public var networkOutputBytes: UInt64
    public var shim: Shim

    public struct Shim: Codable, Sendable, Equatable {
        public var loaded: Bool
        public var reads: UInt64
        public var dualReads: UInt64
        public var routed: UInt64
        public var tagBytes: UInt64
        public var migrationsLearned: UInt64
    }

    /// The sum over clients.
    public static func + (a: ClientTotals, b: ClientTotals) -> ClientTotals {
        ClientTotals(operations: a.operations + b.operations, failed: a.failed + b.failed,
                     timedOut: a.timedOut + b.timedOut,
                     networkInputBytes: a.networkInputBytes + b.networkInputBytes,
                     networkOutputBytes: a.networkOutputBytes + b.networkOutputBytes,
                     shim: Shim(loaded: a.shim.loaded || b.shim.loaded, reads: a.shim.reads + b.shim.reads,
                                dualReads: a.shim.dualReads + b.shim.dualReads, routed: a.shim.routed + b.shim.routed,
                                tagBytes: a.shim.tagBytes + b.shim.tagBytes,
                                migrationsLearned: a.shim.migrationsLearned + b.shim.migrationsLearned))
    }

    public static let zero = ClientTotals(operations: 0, failed: 0, timedOut: 0, networkInputBytes: 0,
                                          networkOutputBytes: 0,
                                          shim: Shim(loaded: false, reads: 0, dualReads: 0, routed: 0, tagBytes: 0,
                                                     migrationsLearned: 0))

    /// Bytes the clients sent and received per operation, on the wire
    /// (frame headers included), migration tags and dual reads included.
    public var bytesPerRequest: Double {
        operations > 0 ? Double(networkInputBytes + networkOutputBytes) / Double(operations) : 0
    }
}

/// One run: the baseline (no migration) or a migration under a strategy.
public struct BenchRun: Codable, Sendable, Equatable {
    public var name: String
    public var figures: RunFigures
    public var migration: MigrationFigures?
    public var clients: ClientTotals
    /// A migration run (the baseline has none).
    public var migrated: Bool {
        if case .some = migration { return true }
        return false
    }
    /// Reads the shim sent to both servers, over every read of the run.
    public var dualReadShare: Double {
        figures.reads > 0 ? Double(clients.shim.dualReads) / Double(figures.reads) : 0
    }

    public init(name: String, figures: RunFigures, migration: MigrationFigures?, clients: ClientTotals) {
        self.name = name
        self.figures = figures
        self.migration = migration
        self.clients = clients
    }
}

/// One target of the benchmark, measured against the baseline.
public struct Target: Codable, Sendable, Equatable {
    public var name: String
    public var measured: Double
    public var limit: Double
    public var met: Bool
}

/// A migration run against the baseline.
public struct Comparison: Codable, Sendable, Equatable {
    public var run: String
    /// Throughput in the migration window over the baseline's in its window.
    public var throughputRatio: Double
    /// p99 latency in the window over the baseline's.
    public var p99Ratio: Double
    /// Longest gap on the migrating range (any kind) over the baseline's.
    public var longestGapRatio: Double
    public var targets: [Target]

    /// Fulva's promise: no failed operation, throughput during migration at
    /// least 90% of the baseline, longest gap at most twice the baseline's,
    /// p99 at most 1.5× the baseline's.
    public init(_ run: BenchRun, baseline: BenchRun) {
        self.run = run.name
        let base = baseline.figures
        throughputRatio = ratio(run.figures.window.operationsPerSecond, base.window.operationsPerSecond)
        p99Ratio = ratio(run.figures.window.latency?.p99Micros ?? .infinity, base.window.latency?.p99Micros ?? 0)
        longestGapRatio = ratio(run.figures.longestGapAnyKindMillis, base.longestGapAnyKindMillis)
        targets = [
            Target(name: "failed operations", measured: Double(run.figures.failed), limit: 0,
                   met: run.figures.failed == 0),
            Target(name: "throughput / baseline", measured: throughputRatio, limit: 0.9, met: throughputRatio >= 0.9),
            Target(name: "longest gap / baseline", measured: longestGapRatio, limit: 2, met: longestGapRatio <= 2),
            Target(name: "p99 / baseline", measured: p99Ratio, limit: 1.5, met: p99Ratio <= 1.5),
        ]
    }
}

func ratio(_ a: Double, _ b: Double) -> Double { b > 0 ? a / b : (a > 0 ? .infinity : 1) }

public struct BenchReport: Codable, Sendable, Equatable {
    public var configuration: BenchConfiguration
    public var ceiling: TransferCeiling?
    public var runs: [BenchRun]
    public var comparisons: [Comparison]

    public init(configuration: BenchConfiguration, ceiling: TransferCeiling?, runs: [BenchRun]) {
        self.configuration = configuration
        self.ceiling = ceiling
        self.runs = runs
        let baseline = runs.first { !$0.migrated }
        comparisons = baseline.map { base in runs.filter(\.migrated).map { Comparison($0, baseline: base) } } ?? []
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                      nan: "nan")
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> BenchReport {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf",
                                                                         negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(BenchReport.self, from: data)
    }

    /// The side-by-side table for a terminal.
    public var table: String {
        let c = configuration
        var lines: [String] = []
        lines.append(String(format: "workload: %d records of %d B, %.0f%% reads, %@, %d clients × %d outstanding; "
                            + "%.0f%% of the key-hash range migrates; transport %@ on %d cores",
                            c.records, c.valueBytes, c.readRatio * 100,
                            c.distribution == "zipf" ? "Zipf \(c.zipfTheta)" : "uniform", c.clients, c.outstanding,
                            c.migratingShare * 100, c.transport, c.hostCores))
        if let ceiling {
            lines.append(String(format: "bulk-transfer ceiling %llu → %llu: %.1f MB/s (%.1f MB, %u KB replies, %u in flight)",
                                ceiling.source, ceiling.destination, ceiling.megabytesPerSecond,
                                Double(ceiling.bytes) / 1e6, ceiling.chunkBytes / 1024, ceiling.outstanding))
        }
        let header = ["run", "ops/s", "×base", "p50 µs", "p99 µs", "×base", "p99.9 µs", "gap read ms",
                      "gap write ms", "×base", "failed", "migr s", "MB/s", "%ceil", "B/req", "dual%", "prio"]
        var rows: [[String]] = [header]
        let baseline = runs.first { $0.migration == nil }
        for run in runs {
            let f = run.figures
            let cmp = comparisons.first { $0.run == run.name }
            let m = run.migration
            func fmt(_ v: Double?, _ spec: String = "%.0f") -> String { v.map { String(format: spec, $0) } ?? "-" }
            rows.append([
                run.name,
                run.migration?.error != nil ? "FAILED" : fmt(f.window.operationsPerSecond),
                cmp.map { fmt($0.throughputRatio, "%.2f") } ?? (run == baseline ? "1" : "-"),
                fmt(f.window.latency?.p50Micros), fmt(f.window.latency?.p99Micros),
                cmp.map { fmt($0.p99Ratio, "%.2f") } ?? "-",
                fmt(f.window.latency?.p999Micros),
                fmt(f.longestGapMillis["read"], "%.1f"), fmt(f.longestGapMillis["write"], "%.1f"),
                cmp.map { fmt($0.longestGapRatio, "%.2f") } ?? "-",
                "\(f.failed)",
                fmt(m?.seconds, "%.2f"), fmt(m?.megabytesPerSecond, "%.1f"),
                fmt(m?.fractionOfCeiling.map { $0 * 100 }, "%.0f"),
                fmt(run.clients.bytesPerRequest),
                fmt(run.dualReadShare * 100, "%.1f"),
                m?.priorityPulls.map(String.init) ?? "-",
            ])
        }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for (index, row) in rows.enumerated() {
            lines.append(row.enumerated().map { i, cell in
                i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                       : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  "))
            if index == 0 { lines.append(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))) }
        }
        lines.append("window: the migration (baseline: the same stretch of its load, as long as the longest migration); "
            + "gap: longest time without a completed operation of that kind on the migrating range")
        for run in runs where run.migration != nil {
            let f = run.figures
            let at = f.longestGapMillis.keys.sorted().map { kind in
                String(format: "%@ %.1f ms from %+.0f ms", kind, f.longestGapMillis[kind] ?? 0,
                       (f.longestGapStartMillis[kind] ?? 0) - f.windowStartMillis)
            }
            lines.append("\(run.name): longest gaps " + at.joined(separator: ", ") + " (from the migration's start)")
            if let error = run.migration?.error { lines.append("\(run.name): the migration FAILED: \(error)") }
        }
        for cmp in comparisons {
            let missed = cmp.targets.filter { !$0.met }
            lines.append("\(cmp.run): " + (missed.isEmpty ? "every target met" : "missed " + missed.map {
                String(format: "%@ %.2f (limit %.2f)", $0.name, $0.measured, $0.limit)
            }.joined(separator: ", ")))
        }
        return lines.joined(separator: "\n")
    }
}
