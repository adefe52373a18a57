import FulvaCore
import FulvaMetrics
import Prometheus
import Testing

@Suite struct MigrationMetricsTests {
    func lines(_ registry: PrometheusCollectorRegistry) -> Set<String> {
        Set(registry.emitToString().split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init))
    }

    @Test func recordsBecomeGaugesAndTotalsBecomeCounters() throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = MigrationMetrics(factory: PrometheusMetricsFactory(registry: registry))
        var running = MigrationRecord(id: MigrationID(7), tablet: Tablet(tableID: 3), source: ServerID(1),
                                      destination: ServerID(2), strategy: .fulva, createdAt: 1_000)
        running = try running.moved(to: .moving, at: 1_500)
        running.objectsMoved = 400
        running.bytesMoved = 3_000_000
        running.progress = 0.25
        var ended = MigrationRecord(id: MigrationID(5), tablet: Tablet(tableID: 4), source: ServerID(2),
                                    destination: ServerID(1), strategy: .rocksteady, createdAt: 0)
        ended = try ended.moved(to: .moving, at: 100).moved(to: .done, at: 2_100)
        ended.bytesMoved = 1_000_000

        metrics.observe(records: [running, ended],
                        counters: [ServerFulvaCounters(server: 1, priorityPulls: 10, sourceReads: 100)], nowMillis: 3_500)
        let first = lines(registry)
        let m7 = #"migration="7",table="3",strategy="fulva""#
        for expected in [
            #"fulva_migrations{phase="moving"} 1.0"#, #"fulva_migrations{phase="done"} 1.0"#,
            #"fulva_migrations{phase="failed"} 0.0"#,
            "fulva_migration_objects_moved{\(m7)} 400.0", "fulva_migration_bytes_moved{\(m7)} 3000000.0",
            "fulva_migration_progress_ratio{\(m7)} 0.25",
            // Moving for 2 s so far (1.5 s to 3.5 s): 1.5 MB/s.
            "fulva_migration_bytes_per_second{\(m7)} 1500000.0",
            #"fulva_migration_phase_seconds{migration="7",table="3",strategy="fulva",phase="preparing"} 0.5"#,
            #"fulva_migration_phase_seconds{migration="7",table="3",strategy="fulva",phase="moving"} 2.0"#,
            // An ended migration keeps its moving time: 2 s for 1 MB.
            #"fulva_migration_bytes_per_second{migration="5",table="4",strategy="rocksteady"} 500000.0"#,
            #"fulva_priority_pulls_total{server="1"} 10"#, #"fulva_source_reads_total{server="1"} 100"#,
        ] {
            #expect(first.contains(expected), "\(expected) in \(first.sorted())")
        }

        // Totals go up: the counters follow; a restarted master (a lower
        // total) adds its new total.
        metrics.observe(records: [], counters: [ServerFulvaCounters(server: 1, priorityPulls: 25, sourceReads: 100)],
                        nowMillis: 4_000)
        #expect(lines(registry).contains(#"fulva_priority_pulls_total{server="1"} 25"#))
        metrics.observe(records: [], counters: [ServerFulvaCounters(server: 1, priorityPulls: 4, sourceReads: 3)],
                        nowMillis: 5_000)
        let last = lines(registry)
        #expect(last.contains(#"fulva_priority_pulls_total{server="1"} 29"#) && last.contains(#"fulva_source_reads_total{server="1"} 103"#),
                "\(last.sorted())")
    }
}
