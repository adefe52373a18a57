import ArgumentParser
import Foundation
import FulvaCluster
import FulvaCore
import FulvaRAMCloud
import FulvaZooKeeper

/// How rc-migrate reaches a cluster: a locator given on the command line,
/// or the local cluster directory's. Over dpdk, the process re-executes
/// itself in a client namespace of the cluster (DPDK needs its own port).
struct Connection: ParsableArguments {
    @Option(help: "Cluster to talk to: a zk: or RAMCloud locator (default: the local cluster in --dir).")
    var storage: String?

    @OptionGroup var cluster: ClusterOptions

    /// The cluster's locator: --storage, $FULVA_CLUSTER_STORAGE, or the
    /// local cluster's (re-executing in a namespace over dpdk).
    func locator() throws -> String {
        if let given = storage ?? ProcessInfo.processInfo.environment["FULVA_CLUSTER_STORAGE"] { return given }
        let launcher = cluster.launcher
        guard let state = try? launcher.load() else {
            throw fail("no cluster given: --storage zk:HOST:PORT, or a local cluster in \(cluster.dir)")
        }
        if state.network != nil && ProcessInfo.processInfo.environment["RAMCLOUD_DPDK_PORT"] == nil {
            try reexecInNamespace(launcher)
        }
        return state.externalStorage
    }

    /// The migration records in the cluster's ZooKeeper.
    func records() throws -> MigrationRecordStore {
        let where_ = try locator()
        guard where_.hasPrefix("zk:") else {
            throw fail("migration records live in ZooKeeper: give the cluster as zk:HOST:PORT, not \(where_)")
        }
        do {
            return try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: where_, timeoutMillis: 5000))
        } catch {
            throw fail("\(error)")
        }
    }

    func connect() throws -> RAMCloudClient {
        let home = cluster.ramcloudHome.map { RAMCloudHome(path: $0) } ?? RAMCloudHome()
        if let missing = home.missing { throw fail(missing) }
        let where_ = try locator()
        do {
            let library = try RAMCloudLibrary(path: home.library)
            RAMCloudInProcess.madeClient()
            return try RAMCloudClient(library: library, coordinator: where_)
        } catch let error as RAMCloudLoadError {
            throw fail(error.message)
        } catch let error as RAMCloudError {
            throw fail("cannot connect to \(where_): \(error)")
        }
    }

    /// A client for the side checks of read-only commands (status, list):
    /// nil, silently, where the cluster cannot be reached.
    func connectQuietly() -> RAMCloudClient? {
        let home = cluster.ramcloudHome.map { RAMCloudHome(path: $0) } ?? RAMCloudHome()
        guard home.missing == nil, let where_ = try? locator(), let library = try? RAMCloudLibrary(path: home.library) else {
            return nil
        }
        RAMCloudInProcess.madeClient()
        return try? RAMCloudClient(library: library, coordinator: where_)
    }

    /// The records with every running migration whose server is gone marked
    /// FAILED (`reconcile`), and a client that is safe to use again: nil
    /// when the cluster cannot be reached or did not answer in time.
    func reconciled(_ records: [MigrationRecord], store: MigrationRecordStore) -> ([MigrationRecord], RAMCloudClient?) {
        guard let client = connectQuietly() else { return (records, nil) }
        guard records.contains(where: { !$0.phase.isTerminal }) else { return (records, client) }
        guard let live = liveServers(client, within: 5) else { return (records, nil) }
        return (reconcile(records, store: store, live: live), client)
    }

    /// Runs this same command again as a client of the dpdk cluster.
    func reexecInNamespace(_ launcher: ClusterLauncher) throws -> Never {
        let (prefix, environment) = try launcher.clientPlacement("rc-migrate")
        for (key, value) in environment { setenv(key, value, 1) }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let argv = prefix + [me] + CommandLine.arguments.dropFirst()
        let cArguments = argv.map { strdup($0) } + [nil]
        execv(argv[0], cArguments)
        throw fail("cannot run \(argv[0]): \(String(cString: strerror(errno)))")
    }
}

/// The cluster's live servers, or nil when the coordinator does not answer
/// within `seconds` (the client is then left to its thread and not used
/// again).
func liveServers(_ client: RAMCloudClient, within seconds: Double) -> Set<ServerID>? {
    // The client moves to the thread; the caller does not touch it while
    // the thread may still run.
    final class Box: @unchecked Sendable {
        let client: RAMCloudClient
        var live: Set<ServerID>?
        init(_ client: RAMCloudClient) { self.client = client }
    }
    let box = Box(client), done = DispatchSemaphore(value: 0)
    Thread {
        box.live = (try? box.client.liveMasters()).map(Set.init)
        done.signal()
    }.start()
    guard done.wait(timeout: .now() + seconds) == .success else { return nil }
    return box.live
}

/// Whether this process has loaded libramcloud and made a client: its
/// threads (the transport's reader, a client left to a thread by
/// `liveServers`) may still run at exit, and C++ static destructors running
/// under them crashed rc-migrate in libstdc++ now and then (seen in the
/// kernel log during the cluster tests, after its output was complete). Such
/// a process ends without exit()'s cleanup; it holds nothing that needs it
/// (its output is flushed, ZooKeeper sessions end with the process).
enum RAMCloudInProcess {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var clients = 0
    static func madeClient() { lock.withLock { clients += 1 } }
    static var any: Bool { lock.withLock { clients > 0 } }

    /// Ends the process now with `status`, output flushed.
    static func exit(_ status: Int32) -> Never {
        fflush(nil)
        _exit(status)
    }
}

/// Marks FAILED, with the cause, each migration still running whose source
/// or destination is gone from the cluster (a dead destination cannot say
/// so itself). A conditional write: a migration that ended meanwhile keeps
/// its end. Returns the records as they are now.
@discardableResult
func reconcile(_ records: [MigrationRecord], store: MigrationRecordStore, live: Set<ServerID>?) -> [MigrationRecord] {
    guard let live, !live.isEmpty else { return records }
    return records.map { record in
        guard let cause = record.failureCause(liveServers: live) else { return record }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let updated = try? store.update(record.id) { current in
            guard current.failureCause(liveServers: live) != nil else { return }
            current = try current.moved(to: .failed, at: now, error: cause)
        }
        if updated != nil {
            FileHandle.standardError.write(Data("rc-migrate: \(record.id) FAILED: \(cause)\n".utf8))
        }
        return updated ?? record
    }
}

func parseKeyHash(_ text: String) throws -> UInt64 {
    let value = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
    guard let value else { throw ValidationError("'\(text)' is not a key hash (decimal or 0x hex)") }
    return value
}

/// Prints progress of a running migration: a bar on a terminal, JSON lines
/// with --json, on stderr; returns the final record.
func followMigration(_ store: MigrationRecordStore, id: MigrationID, json: Bool,
                     timeout: Double, client: RAMCloudClient? = nil) throws -> MigrationRecord {
    let deadline = Date().addingTimeInterval(timeout)
    var client = client
    var lagSince: Date?
    var nextLivenessCheck = Date()
    let terminal = isatty(STDERR_FILENO) == 1 && !json
    var last: MigrationRecord?
    while true {
        var record: MigrationRecord
        do {
            guard let found = try store.load(id) else { throw fail("no record of \(id) in \(store.root)") }
            record = found
        } catch let error as ZooKeeperError {
            throw fail("cannot read the record of \(id): \(error)")
        }
        // About every two seconds: are both servers still there?
        if let asking = client, !record.phase.isTerminal, Date() >= nextLivenessCheck {
            nextLivenessCheck = Date().addingTimeInterval(2)
            let live = liveServers(asking, within: 5)
            if live == nil { client = nil }
            record = reconcile([record], store: store, live: live)[0]
        }
        if json {
            FileHandle.standardError.write(Data((recordJSON(record) + "\n").utf8))
        } else if terminal {
            let width = 30
            let done = Int(record.progress * Double(width))
            let bar = String(repeating: "#", count: done) + String(repeating: ".", count: width - done)
            let line = String(format: "\r%@ [%@] %3.0f%%  %llu objects  %.1f MB", record.phase.rawValue, bar,
                              record.progress * 100, record.objectsMoved, Double(record.bytesMoved) / 1e6)
            FileHandle.standardError.write(Data(line.utf8))
        } else if last?.phase != record.phase {
            FileHandle.standardError.write(Data("rc-migrate: \(id): \(record.phase)\n".utf8))
        }
        last = record
        // The destination writes the record; if it could not (ZooKeeper
        // unreachable from it), its own view is the truth: report that.
        if !record.phase.isTerminal, let client,
           let live = try? client.migrationStatus(destination: record.destination, id: id), live.phase.isTerminal {
            if lagSince == nil { lagSince = Date() }
            if Date().timeIntervalSince(lagSince!) > 5 {
                FileHandle.standardError.write(Data("rc-migrate: \(id): the record in ZooKeeper still says \(record.phase); the destination says \(live.phase)\n".utf8))
                if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
                return live
            }
        }
        if record.phase.isTerminal {
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            return record
        }
        if Date() > deadline { throw TimedOut(record: record) }
        usleep(200_000)
    }
}

struct TimedOut: Error { var record: MigrationRecord }

func recordJSON(_ r: MigrationRecord) -> String {
    var fields: [String] = [
        "\"id\":\(r.id.rawValue)", "\"table\":\(r.tablet.tableID)",
        "\"firstKeyHash\":\(r.tablet.range.start)", "\"lastKeyHash\":\(r.tablet.range.end)",
        "\"source\":\(r.source.rawValue)", "\"destination\":\(r.destination.rawValue)",
        "\"strategy\":\"\(r.strategy.rawValue)\"", "\"phase\":\"\(r.phase.rawValue)\"",
        "\"progress\":\(r.progress)", "\"objectsMoved\":\(r.objectsMoved)", "\"bytesMoved\":\(r.bytesMoved)",
        "\"bucketsReplayed\":\(r.bucketsReplayed)", "\"bucketCount\":\(r.bucketCount)",
        "\"pullBatches\":\(r.pullBatches)", "\"createdAtMillis\":\(r.createdAt)", "\"updatedAtMillis\":\(r.updatedAt)",
    ]
    if let bound = r.versionBound { fields.append("\"versionBound\":\(bound)") }
    if let m = r.reversedBy { fields.append("\"reversedBy\":\(m.rawValue)") }
    if let m = r.reverseOf { fields.append("\"reverseOf\":\(m.rawValue)") }
    if r.throttleBytesPerSecond > 0 { fields.append("\"throttleBytesPerSecond\":\(r.throttleBytesPerSecond)") }
    if let error = r.lastError {
        let escaped = error.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        fields.append("\"lastError\":\"\(escaped)\"")
    }
    return "{" + fields.joined(separator: ",") + "}"
}

/// Gives up with a clear error when the cluster does not answer within
/// `seconds` (a RAMCloud client otherwise waits for a dead coordinator or
/// master forever). Only steps that change nothing run under it.
func answering<T>(within seconds: Double, _ what: String, _ body: () throws -> T) rethrows -> T {
    let finished = DispatchSemaphore(value: 0)
    let watchdog = Thread {
        if finished.wait(timeout: .now() + seconds) == .timedOut {
            FileHandle.standardError.write(Data("rc-migrate: error: \(what) did not answer within \(Int(seconds)) s (--cluster-timeout); nothing was changed\n".utf8))
            _exit(1)
        }
    }
    watchdog.start()
    defer { finished.signal() }
    return try body()
}

/// A tablet migration as the operator names it, checked against the
/// cluster before anything changes (`start` and `plan` share it).
struct MigrationTarget: ParsableArguments {
    @Option(help: "Table name.") var table: String
    @Option(help: "First key hash of the range (default: 0).", transform: parseKeyHash) var firstHash: UInt64 = 0
    @Option(help: "Last key hash of the range (default: the largest).", transform: parseKeyHash) var lastHash: UInt64 = .max
    @Option(help: "Destination master (server id).") var to: UInt64
    @Option(help: "fulva, rocksteady or source (RAMCloud's own migrateTablet).") var strategy = "fulva"
    @Option(help: "Most MB/s the destination pulls (0: no limit; `rc-migrate throttle` changes it later).")
    var throttle = 0.0
    @Option(help: "Refuse to start when this many migrations are running.") var maxActive = MigrationRequest.defaultActiveLimit
    @Option(help: "Seconds to wait for the coordinator or a master to answer before giving up.")
    var clusterTimeout = 15.0

    var chosenStrategy: Strategy {
        get throws {
            guard let chosen = Strategy(rawValue: strategy) else {
                throw ValidationError("unknown strategy '\(strategy)' (fulva, rocksteady or source)")
            }
            return chosen
        }
    }

    var throttleBytesPerSecond: UInt64 { UInt64(throttle * 1e6) }

    func validate() throws {
        _ = try chosenStrategy
        guard firstHash <= lastHash else { throw ValidationError("--first-hash is above --last-hash") }
        guard throttle >= 0, throttle.isFinite else { throw ValidationError("--throttle must be a rate in MB/s, 0 or more") }
        guard maxActive >= 1 else { throw ValidationError("--max-active must be 1 or more") }
        guard clusterTimeout > 0 else { throw ValidationError("--cluster-timeout must be above 0") }
    }

    /// The checked migration: table, single source, live distinct
    /// destination, no overlap with a running migration, under the limit.
    func check(_ client: RAMCloudClient, _ store: MigrationRecordStore?, locator: String) throws
        -> (tableID: UInt64, tablet: Tablet, source: UInt64) {
        try answering(within: clusterTimeout, "the cluster at \(locator)") {
            let tableID: UInt64
            do { tableID = try client.tableID(table) } catch {
                throw fail("unknown table '\(table)': \(error)")
            }
            let tablet = Tablet(tableID: tableID, range: try KeyHashRange(start: firstHash, end: lastHash))
            // The records first: a range under migration has two owners
            // in a sense, and the running migration is the clearer answer.
            let active: [MigrationRecord]
            do { active = try store?.list() ?? [] } catch { throw fail("cannot read the migration records: \(error)") }
            do { try MigrationRequest.admit(tablet, active: active, limit: maxActive) } catch let refused as FulvaError {
                throw fail(refused.description)
            }
            let source: UInt64
            do { source = try client.owner(table: tableID, keyHash: firstHash) } catch {
                throw fail("cannot find the owner of key hash 0x\(String(firstHash, radix: 16)) of \(table): \(error)")
            }
            guard source != to else { throw fail("server \(to) already owns that range: source and destination are the same") }
            if let live = try? client.liveMasters().map(\.rawValue), !live.contains(to) {
                throw fail("server \(to) is not a live master of the cluster (live: \(live.map(String.init).joined(separator: ", ")))")
            }
            if let lastOwner = try? client.owner(table: tableID, keyHash: lastHash), lastOwner != source {
                throw fail("the range is not owned by a single master (servers \(source) and \(lastOwner) own parts of it); migrate each part")
            }
            return (tableID, tablet, source)
        }
    }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a live migration of a tablet (the whole table, or a key-hash range).",
        discussion: """
            The destination runs the migration; rc-migrate only asks it to start and, with
            --wait, follows its progress. A range that is not a whole tablet is split off
            first. The id printed on stdout names the migration for `rc-migrate status`.
            Nothing changes in the cluster when a check fails: unknown table, a range two
            masters own, the destination already owning it or not a live master, a
            migration already running over the range, --max-active migrations running.

            Examples:
              rc-migrate start --table users --to 2 --wait
              rc-migrate start --table users --first-hash 0 --last-hash 0x7fffffffffffffff --to 3
              rc-migrate start --table users --to 2 --throttle 50 --wait
              rc-migrate start --table users --to 2 --strategy source
            """)
    @OptionGroup var connection: Connection
    @OptionGroup var target: MigrationTarget
    @Option(help: "Partitions of the source's hash table pulled in parallel (0: default).") var partitions = 0
    @Flag(help: "Wait until the migration ends, showing progress.") var wait = false
    @Flag(help: "Progress as JSON lines on stderr, the result as JSON on stdout.") var json = false
    @Option(help: "With --wait: give up waiting after this many seconds.") var timeout = 3600.0

    func validate() throws {
        guard (0...MigrationRequest.maxPartitions).contains(partitions) else {
            throw ValidationError("--partitions must be in 0...\(MigrationRequest.maxPartitions)")
        }
        if try target.chosenStrategy == .source && target.throttle > 0 {
            throw ValidationError("--throttle applies to fulva and rocksteady (RAMCloud's own migrateTablet has none)")
        }
    }

    func run() throws {
        let chosen = try target.chosenStrategy
        // ZooKeeper first: it answers within a timeout, where a RAMCloud
        // client would wait for an unreachable cluster forever.
        let store = chosen == .source ? nil : try connection.records()
        let client = try connection.connect()
        let (tableID, tablet, source) = try target.check(client, store, locator: try connection.locator())
        let (table, firstHash, lastHash, to) = (target.table, target.firstHash, target.lastHash, target.to)
        func splitRangeEnds() throws {
            if firstHash > 0 { try client.splitTablet(table: table, splitKeyHash: firstHash) }
            if lastHash < .max { try client.splitTablet(table: table, splitKeyHash: lastHash + 1) }
        }
        if chosen == .source {
            do { try splitRangeEnds() } catch { throw fail("cannot split \(table) at the range's ends: \(error)") }
            let started = Date()
            do {
                try client.migrateTablet(tableID: tableID, firstKeyHash: firstHash, lastKeyHash: lastHash, newOwner: to)
            } catch { throw fail("RAMCloud's migrateTablet failed: \(error)") }
            print(json ? "{\"strategy\":\"source\",\"seconds\":\(Date().timeIntervalSince(started))}" : "done")
            return
        }
        // The record first (its id comes from ZooKeeper's counter; a start
        // that lost a race goes before the tablet map changes), then the
        // split, then the destination; a refusal is written into the record.
        guard let store else { throw fail("no migration records") }
        var request = MigrationRequest(id: MigrationID(0), tablet: tablet, source: ServerID(source),
                                       destination: ServerID(to), strategy: chosen, partitions: partitions)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        do {
            let record = try store.create(request, at: now, throttleBytesPerSecond: target.throttleBytesPerSecond)
            request.id = record.id
            // Another start may have passed the same checks meanwhile: the
            // earlier record stands, this one goes.
            do {
                try MigrationRequest.settle(record, among: try store.list(), limit: target.maxActive)
            } catch let refused as FulvaError {
                try? store.remove(record)
                throw fail(refused.description)
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail("cannot write the migration record: \(error)")
        }
        do { try splitRangeEnds() } catch {
            // No migration ran under the record: it goes too.
            if let written = try? store.load(request.id) { try? store.remove(written) }
            throw fail("cannot split \(table) at the range's ends: \(error)")
        }
        let id = request.id
        do { try client.startMigration(request) } catch {
            _ = try? store.update(id) { $0 = try $0.moved(to: .failed, at: now, error: error.message) }
            throw fail("\(error.message)")
        }
        if !wait {
            print(json ? "{\"id\":\(id.rawValue),\"destination\":\(to)}" : "\(id.rawValue)")
            return
        }
        let record: MigrationRecord
        do {
            record = try followMigration(store, id: id, json: json, timeout: timeout, client: client)
        } catch let timedOut as TimedOut {
            print(json ? recordJSON(timedOut.record) : "\(id.rawValue) \(timedOut.record.phase)")
            throw ExitCode(3)
        }
        print(json ? recordJSON(record) : "\(id.rawValue) \(record.phase)")
        if record.phase != .done {
            FileHandle.standardError.write(Data("rc-migrate: \(id) \(record.phase): \(record.lastError ?? "")\n".utf8))
            throw ExitCode(record.phase == .cancelled || record.phase == .cancelling ? 4 : 1)
        }
    }
}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dry run: what a migration would move and about how long it would take. Changes nothing.",
        discussion: """
            Runs the checks `start` runs, then asks the source to count the range's objects
            and their bytes (the source counts; nothing but the totals crosses the network).
            The time estimate divides the bytes by a rate, and says which: --throttle when
            given; else the median rate of the last five finished migrations of this
            cluster's records; else the raw transfer rate between the two masters, measured
            now (4 MB), which a migration under load does not reach.

            Examples:
              rc-migrate plan --table users --to 2
              rc-migrate plan --table users --last-hash 0x7fffffffffffffff --to 3 --json
            """)
    @OptionGroup var connection: Connection
    @OptionGroup var target: MigrationTarget
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let chosen = try target.chosenStrategy
        let store = try connection.records()
        let client = try connection.connect()
        let locator = try connection.locator()
        let (_, tablet, source) = try target.check(client, chosen == .source ? nil : store, locator: locator)
        let (objects, bytes) = try answering(within: max(target.clusterTimeout, 60), "server \(source)") {
            do { return try client.inventory(server: ServerID(source), tablet: tablet) } catch {
                throw fail("server \(source) could not count the range: \(error)")
            }
        }
        let rate: Double, basis: String
        let finished = ((try? store.list()) ?? []).filter { $0.phase == .done && $0.strategy == chosen && $0.bytesMoved > 0
            && $0.updatedAt > $0.createdAt }.suffix(5)
        if target.throttle > 0 {
            (rate, basis) = (target.throttle * 1e6, "the throttle")
        } else if !finished.isEmpty {
            let rates = finished.map { Double($0.bytesMoved) / (Double($0.updatedAt - $0.createdAt) / 1000) }.sorted()
            (rate, basis) = (rates[rates.count / 2], "the median of the last \(rates.count) finished \(chosen) migrations")
        } else {
            let probe = try answering(within: max(target.clusterTimeout, 60), "servers \(source) and \(target.to)") {
                do {
                    return try client.transferProbe(from: ServerID(source), to: ServerID(target.to), bytes: 4 << 20,
                                                    chunkBytes: 256 << 10, outstanding: 4)
                } catch { throw fail("the transfer probe from \(source) to \(target.to) failed: \(error)") }
            }
            (rate, basis) = (Double(probe.bytes) / (Double(max(probe.nanoseconds, 1)) / 1e9), "the raw transfer rate between the masters (a migration under load is slower)")
        }
        let seconds = rate > 0 ? Double(bytes) / rate : 0
        if json {
            print("{\"table\":\(tablet.tableID),\"firstKeyHash\":\(tablet.range.start),\"lastKeyHash\":\(tablet.range.end),"
                + "\"source\":\(source),\"destination\":\(target.to),\"strategy\":\"\(chosen.rawValue)\","
                + "\"objects\":\(objects),\"bytes\":\(bytes),\"bytesPerSecond\":\(rate),"
                + "\"estimatedSeconds\":\(seconds),\"rateBasis\":\"\(basis)\"}")
        } else {
            print("\(tablet) of \(target.table): server \(source) -> \(target.to), \(chosen)")
            print("objects\t\(objects)")
            print("bytes\t\(bytes)" + String(format: " (%.1f MB)", Double(bytes) / 1e6))
            print(String(format: "estimate\t%.1f s at %.1f MB/s (%@)", seconds, rate / 1e6, basis))
        }
    }
}

struct ThrottleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "throttle",
        abstract: "Change a running migration's throttle (MB/s; 0 lifts it).",
        discussion: """
            The destination reads the rate from the migration's record a few times a second.

            Examples:
              rc-migrate throttle 12 20
              rc-migrate throttle 12 0
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "Migration id.") var id: UInt64
    @Argument(help: "MB/s the destination may pull (0: no limit).") var rate: Double

    func validate() throws {
        guard rate >= 0, rate.isFinite else { throw ValidationError("the rate must be in MB/s, 0 or more") }
    }

    func run() throws {
        let store = try connection.records()
        do {
            let record = try store.update(MigrationID(id)) { record in
                guard !record.phase.isTerminal else { throw FulvaError.invalidRequest("\(record.id) has ended (\(record.phase))") }
                guard record.strategy != .source else { throw FulvaError.invalidRequest("RAMCloud's own migrateTablet has no throttle") }
                record.throttleBytesPerSecond = UInt64(rate * 1e6)
            }
            print(recordJSON(record))
        } catch let error as ZooKeeperError where error.isMissing {
            throw fail("no migration \(id) in \(store.root)")
        } catch {
            throw fail("\(error)")
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show migrations from their records in ZooKeeper (all of them, or one).",
        discussion: """
            Examples:
              rc-migrate status
              rc-migrate status 12 --watch
              rc-migrate status 12 --json
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "Migration id (default: every migration).") var id: UInt64?
    @Flag(help: "Follow it until it ends (needs an id).") var watch = false
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let store = try connection.records()
        var records: [MigrationRecord]
        do {
            if let id {
                guard let record = try store.load(MigrationID(id)) else { throw fail("no migration \(id) in \(store.root)") }
                records = [record]
            } else {
                records = try store.list()
            }
        } catch let error as ZooKeeperError {
            throw fail("\(error)")
        }
        let client: RAMCloudClient?
        (records, client) = connection.reconciled(records, store: store)
        if watch {
            guard let id else { throw ValidationError("--watch needs a migration id") }
            records = [try followMigration(store, id: MigrationID(id), json: json, timeout: .infinity, client: client)]
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for record in records {
            print(json ? recordJSON(record) : List.line(record, now: now))
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List migrations from their records in ZooKeeper, oldest first.",
        discussion: """
            One line per migration: id, phase, strategy, table and key-hash range, source
            and destination, progress, objects and bytes moved, when it started (UTC) and
            how long it ran (or has been running). --json prints the records as JSON lines.

            Examples:
              rc-migrate list
              rc-migrate list --active
              rc-migrate list --json
            """)
    @OptionGroup var connection: Connection
    @Flag(help: "Only migrations that have not ended.") var active = false
    @Flag(help: "JSON lines.") var json = false

    func run() throws {
        let store = try connection.records()
        var records: [MigrationRecord]
        do {
            records = try store.list().sorted { $0.id.rawValue < $1.id.rawValue }
        } catch {
            throw fail("cannot read the migration records: \(error)")
        }
        records = connection.reconciled(records, store: store).0
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for record in records where !active || !record.phase.isTerminal {
            print(json ? recordJSON(record) : Self.line(record, now: now))
        }
    }

    static func line(_ r: MigrationRecord, now: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        let started = formatter.string(from: Date(timeIntervalSince1970: Double(r.createdAt) / 1000))
        let ranMillis = (r.phase.isTerminal ? r.updatedAt : now) - r.createdAt
        return "\(r.id.rawValue)\t\(r.phase)\t\(r.strategy)\t\(r.tablet)\t"
            + "\(r.source.rawValue) -> \(r.destination.rawValue)\t"
            + String(format: "%.0f%%\t%llu objects\t%llu bytes\t%@\t%.1f s", r.progress * 100, r.objectsMoved,
                     r.bytesMoved, started, Double(max(0, ranMillis)) / 1000)
            + (r.throttleBytesPerSecond > 0 ? String(format: "\tthrottle %.3g MB/s", Double(r.throttleBytesPerSecond) / 1e6) : "")
            + (r.reversedBy.map { "\tcancelled by reverse run \($0.rawValue)" } ?? "")
            + (r.reverseOf.map { "\treverse run of \($0.rawValue)" } ?? "")
            + (r.lastError.map { "\t\($0)" } ?? "")
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a migration: the source owns the tablet again, and nothing acknowledged is lost.",
        discussion: """
            Before the source froze the tablet, the migration just stops. After that, a
            reverse run (a migration with an id of its own, printed on stdout) moves the
            tablet back from the destination to the source while both keep serving: the
            source still holds its old copy, so only what was written or removed at the
            destination moves back. The cancelled migration's record says cancelling, then
            cancelled once the reverse run is done. A migration that has ended cannot be
            cancelled (exit 1). Running cancel again on a cancelling migration asks the
            source to start its reverse run again (harmless if it runs).

            Examples:
              rc-migrate cancel 12
              rc-migrate cancel 12 --wait
              rc-migrate cancel 12 --wait --json
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "Migration id.") var id: UInt64
    @Flag(help: "Wait until the tablet is back at the source, showing progress.") var wait = false
    @Flag(help: "Progress as JSON lines on stderr, the result as JSON on stdout.") var json = false
    @Option(help: "With --wait: give up waiting after this many seconds.") var timeout = 3600.0

    func run() throws {
        let store = try connection.records()
        let id = MigrationID(self.id)
        func load(_ id: MigrationID) throws -> MigrationRecord {
            do {
                guard let record = try store.load(id) else { throw fail("no migration \(id.rawValue) in \(store.root)") }
                return record
            } catch let error as ZooKeeperError {
                throw fail("cannot read the record of \(id): \(error)")
            }
        }
        let now = { Int64(Date().timeIntervalSince1970 * 1000) }
        var record = try load(id)
        var reverse: MigrationRequest?
        if record.phase == .cancelling, let reverseID = record.reversedBy {
            // A cancel that was interrupted (or is running): ask again.
            reverse = MigrationRequest.reverse(of: record, id: reverseID)
        } else {
            let action: MigrationRecord.CancelAction
            do { action = try record.cancelAction() } catch { throw fail(error.description) }
            switch action {
            case .releaseSource:
                // The destination sees the cancel when it records its
                // move to moving, and undoes its side; the source never
                // froze the tablet.
                do {
                    record = try store.update(id) { r in
                        guard r.phase == .preparing else { throw FulvaError.cancelTooLate(id, r.phase) }
                        r = try r.moved(to: .cancelled, at: now())
                    }
                } catch FulvaError.cancelTooLate(_, .moving) {
                    // It moved on meanwhile: cancel it the other way.
                    return try run()
                } catch {
                    throw fail("\(error)")
                }
            case .reverse:
                let written: MigrationRecord
                do {
                    written = try store.create(MigrationRequest.reverse(of: record, id: MigrationID(0)), at: now())
                } catch {
                    throw fail("cannot write the reverse run's record: \(error)")
                }
                do {
                    record = try store.update(id) { r in
                        guard r.phase == .moving else { throw FulvaError.cancelTooLate(id, r.phase) }
                        guard !r.finishing else { throw FulvaError.invalidRequest("\(id) is finishing (every batch has moved): too late to cancel") }
                        r = try r.moved(to: .cancelling, at: now())
                        r.reversedBy = written.id
                    }
                } catch {
                    // Finished (or cancelled) meanwhile: no reverse run.
                    try? store.remove(written)
                    throw fail("\(error)")
                }
                reverse = MigrationRequest.reverse(of: record, id: written.id)
            }
        }
        if let reverse {
            let client = try connection.connect()
            do {
                try client.startMigration(reverse)
            } catch where error.message.contains("already known") {
                // Running since an earlier cancel.
            } catch {
                throw fail("the source \(reverse.destination) did not start the reverse run \(reverse.id): "
                           + "\(error.message) (the migration stays cancelling; `rc-migrate cancel \(id.rawValue)` "
                           + "asks again)")
            }
            FileHandle.standardError.write(Data("rc-migrate: \(id) cancelling: reverse run \(reverse.id.rawValue) moves \(record.tablet) back to \(reverse.destination.rawValue)\n".utf8))
            if wait {
                let ended: MigrationRecord
                do {
                    ended = try followMigration(store, id: reverse.id, json: json, timeout: timeout, client: client)
                } catch let timedOut as TimedOut {
                    print(json ? recordJSON(timedOut.record) : "\(reverse.id.rawValue) \(timedOut.record.phase)")
                    throw ExitCode(3)
                }
                if ended.phase != .done {
                    print(json ? recordJSON(ended) : "\(reverse.id.rawValue) \(ended.phase)")
                    FileHandle.standardError.write(Data("rc-migrate: reverse run \(reverse.id) \(ended.phase): \(ended.lastError ?? "")\n".utf8))
                    throw ExitCode(1)
                }
                // The source records the cancelled migration's end once it
                // has told the destination to drop its copy.
                let deadline = Date().addingTimeInterval(max(0, min(timeout, 60)))
                record = try load(id)
                while !record.phase.isTerminal && Date() < deadline {
                    usleep(100_000)
                    record = try load(id)
                }
            } else {
                print(json ? "{\"id\":\(id.rawValue),\"reverseRun\":\(reverse.id.rawValue)}" : "\(reverse.id.rawValue)")
                return
            }
        }
        print(json ? recordJSON(record) : "\(id.rawValue) \(record.phase)")
    }
}
