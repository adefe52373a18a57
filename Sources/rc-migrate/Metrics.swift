import ArgumentParser
import Foundation
import FulvaCore
import FulvaMetrics
import FulvaRAMCloud
import FulvaZooKeeper
import CoreMetrics
import Prometheus

/// A side exporter for Prometheus: the masters' plugin exports nothing
/// itself; this process reads the migration records in ZooKeeper and the
/// masters' counters, and serves them at /metrics.
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Export migration metrics for Prometheus (objects and bytes moved, rate, phases, dual reads, priority pulls).",
        discussion: """
            Every --interval seconds it reads the migration records from ZooKeeper and the
            masters' counters from the coordinator, and serves the Prometheus text format at
            http://LISTEN/metrics. --once prints one collection on stdout and exits.

            Metrics: fulva_migrations{phase}; per migration (labels migration, table,
            strategy) fulva_migration_objects_moved, fulva_migration_bytes_moved,
            fulva_migration_progress_ratio, fulva_migration_bytes_per_second,
            fulva_migration_phase_seconds{phase}; per master (label server)
            fulva_priority_pulls_total, fulva_source_reads_total (reads a source answered
            from its frozen copy: the source's half of each dual read);
            fulva_exporter_collections_total, fulva_exporter_errors_total and
            fulva_exporter_last_collection_seconds (a stale exporter shows).

            Examples:
              rc-migrate metrics --listen 127.0.0.1:9464
              rc-migrate metrics --once
            """)
    @OptionGroup var connection: Connection
    @Option(help: "Address and port to serve /metrics on.") var listen = "127.0.0.1:9464"
    @Option(help: "Seconds between collections.") var interval = 2.0
    @Flag(help: "Collect once, print the metrics on stdout, and exit.") var once = false

    func validate() throws {
        guard interval >= 0.1, interval.isFinite else { throw ValidationError("--interval must be at least 0.1 s") }
        guard Self.address(listen) != nil else { throw ValidationError("--listen takes IPv4ADDRESS:PORT, not '\(listen)'") }
    }

    static func address(_ text: String) -> sockaddr_in? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, String(parts[0]), &address.sin_addr) == 1 else { return nil }
        return address
    }

    func run() throws {
        // A long-running process stops on SIGINT and SIGTERM even when it
        // inherited them blocked (a parent's thread may block them, and
        // posix_spawn keeps the mask); threads started from here on,
        // RAMCloud's and ZooKeeper's included, inherit the unblocked mask.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&stopSignals, signal) }
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        let store = try connection.records()
        let client = try connection.connect()
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let collector = Collector(store: store, client: client, factory: factory)
        if once {
            let ok = collector.collect()
            print(registry.emitToString(), terminator: "")
            if !ok { throw ExitCode(1) }
            return
        }
        let server = try listenSocket()
        FileHandle.standardError.write(Data("rc-migrate: serving http://\(listen)/metrics\n".utf8))
        // Collections run on their own thread: a cluster that stops
        // answering leaves the last values (and a growing
        // fulva_exporter_last_collection_seconds) to scrape.
        let interval = interval
        Thread {
            while true {
                _ = collector.collect()
                usleep(UInt32(interval * 1e6))
            }
        }.start()
        while true {
            let connection = accept(server, nil, nil)
            if connection < 0 { continue }
            Self.answer(connection, registry: registry)
            close(connection)
        }
    }

    func listenSocket() throws -> Int32 {
        var address = Self.address(listen)!
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard server >= 0, bound == 0, Glibc.listen(server, 16) == 0 else {
            throw fail("cannot listen on \(listen): \(String(cString: strerror(errno)))")
        }
        return server
    }

    /// One HTTP/1.0 exchange: GET /metrics gets the text format, anything
    /// else a 404. A scraper that stalls is dropped after 5 s.
    static func answer(_ connection: Int32, registry: PrometheusCollectorRegistry) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while request.count < 65_536 {
            let n = read(connection, &chunk, chunk.count)
            if n <= 0 { break }
            request += chunk[0..<n]
            if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let (status, type, body): (String, String, [UInt8])
        if line.count >= 2, line[0] == "GET", line[1] == "/metrics" || line[1].hasPrefix("/metrics?") {
            (status, type, body) = ("200 OK", "text/plain; version=0.0.4", registry.emitToBuffer())
        } else {
            (status, type, body) = ("404 Not Found", "text/plain", Array("try /metrics\n".utf8))
        }
        let head = "HTTP/1.0 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let reply = Array(head.utf8) + body
        var sent = 0
        while sent < reply.count {
            let n = reply[sent...].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            sent += n
        }
    }
}

/// One collection: records and counters into the metrics.
final class Collector: @unchecked Sendable {
    let store: MigrationRecordStore
    let client: RAMCloudClient
    let metrics: MigrationMetrics
    let collections: CoreMetrics.Counter, errors: CoreMetrics.Counter, lastCollection: CoreMetrics.Gauge

    init(store: MigrationRecordStore, client: RAMCloudClient, factory: PrometheusMetricsFactory) {
        self.store = store
        self.client = client
        metrics = MigrationMetrics(factory: factory)
        collections = CoreMetrics.Counter(label: "fulva_exporter_collections_total", factory: factory)
        errors = CoreMetrics.Counter(label: "fulva_exporter_errors_total", factory: factory)
        lastCollection = CoreMetrics.Gauge(label: "fulva_exporter_last_collection_seconds", factory: factory)
    }

    /// False when the records or the counters could not be read.
    func collect() -> Bool {
        do {
            let servers = try client.serverCounters()
            let records = reconcile(try store.list(), store: store, live: Set(try client.liveMasters()))
            let counters = servers.map {
                ServerFulvaCounters(server: $0.serverID, priorityPulls: $0.priorityPulls, sourceReads: $0.sourceReads)
            }
            metrics.observe(records: records, counters: counters, nowMillis: Int64(Date().timeIntervalSince1970 * 1000))
            collections.increment()
            lastCollection.record(Date().timeIntervalSince1970)
            return true
        } catch {
            errors.increment()
            FileHandle.standardError.write(Data("rc-migrate: metrics: \(error)\n".utf8))
            return false
        }
    }
}
