import CoreMetrics
import FulvaCore

/// One master's Fulva counters, as RAMCloud's PerfStats report them
/// (totals since the master started).
public struct ServerFulvaCounters: Hashable, Sendable {
    public var server: UInt64
    /// Keys the master, as a destination, fetched ahead of their batch.
    public var priorityPulls: UInt64
    /// Reads the master, as a source, answered from its frozen copy: the
    /// source's half of each dual read.
    public var sourceReads: UInt64

    public init(server: UInt64, priorityPulls: UInt64, sourceReads: UInt64) {
        self.server = server
        self.priorityPulls = priorityPulls
        self.sourceReads = sourceReads
    }
}

/// Turns what the cluster says about its migrations (their records, the
/// masters' counters) into swift-metrics gauges and counters, one
/// observation at a time. Whatever backend the factory feeds (Prometheus
/// in `rc-migrate metrics`) exports them.
///
/// Per migration (labels migration, table, strategy), for the migrations
/// still running and the last `endedKept` that ended:
///   fulva_migration_objects_moved, fulva_migration_bytes_moved,
///   fulva_migration_progress_ratio, fulva_migration_bytes_per_second (over
///   its moving phase so far), fulva_migration_phase_seconds (label phase).
/// Per phase: fulva_migrations (how many records are in it).
/// Per master (label server): fulva_priority_pulls_total,
///   fulva_source_reads_total.
public final class MigrationMetrics {
    let factory: MetricsFactory
    public var endedKept = 20
    private var lastCounters: [UInt64: ServerFulvaCounters] = [:]

    public init(factory: MetricsFactory) {
        self.factory = factory
    }

    public func observe(records: [MigrationRecord], counters: [ServerFulvaCounters], nowMillis: Int64) {
        for phase in MigrationPhase.allCases {
            Gauge(label: "fulva_migrations", dimensions: [("phase", phase.rawValue)], factory: factory)
                .record(records.filter { $0.phase == phase }.count)
        }
        let ended = records.filter(\.phase.isTerminal).sorted { $0.id.rawValue < $1.id.rawValue }.suffix(endedKept)
        for record in records.filter({ !$0.phase.isTerminal }) + ended {
            let labels = [("migration", String(record.id.rawValue)), ("table", String(record.tablet.tableID)),
                          ("strategy", record.strategy.rawValue)]
            func gauge(_ name: String, _ value: Double, _ extra: [(String, String)] = []) {
                Gauge(label: name, dimensions: labels + extra, factory: factory).record(value)
            }
            gauge("fulva_migration_objects_moved", Double(record.objectsMoved))
            gauge("fulva_migration_bytes_moved", Double(record.bytesMoved))
            gauge("fulva_migration_progress_ratio", record.progress)
            let end = record.phase.isTerminal ? record.updatedAt : nowMillis
            let durations = record.phaseDurations(now: end)
            for (phase, millis) in durations {
                gauge("fulva_migration_phase_seconds", Double(millis) / 1000, [("phase", phase.rawValue)])
            }
            let moving = durations.first { $0.phase == .moving }?.millis ?? 0
            gauge("fulva_migration_bytes_per_second", moving > 0 ? Double(record.bytesMoved) / (Double(moving) / 1000) : 0)
        }
        // The masters report totals; Prometheus counters only go up, so
        // they take the difference (a master that restarted starts again
        // from its new total).
        for now in counters {
            let before = lastCounters[now.server]
            func add(_ name: String, _ value: UInt64, _ previous: UInt64?) {
                let delta = previous.map { value >= $0 ? value - $0 : value } ?? value
                Counter(label: name, dimensions: [("server", String(now.server))], factory: factory)
                    .increment(by: Int64(clamping: delta))
            }
            add("fulva_priority_pulls_total", now.priorityPulls, before?.priorityPulls)
            add("fulva_source_reads_total", now.sourceReads, before?.sourceReads)
            lastCounters[now.server] = now
        }
    }
}
