import ArgumentParser
import Foundation
import FulvaCheck
import FulvaCore
import FulvaRAMCloud
import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// Client load for a RAMCloud cluster: fills a table, runs a mixed workload
/// whose every answer is checked against what this client wrote, triggers
/// RAMCloud's own migrations and reads the servers' counters. Output is
/// JSON on stdout; progress goes to stderr.
@main
struct FulvaWorkload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulva-workload",
        abstract: "Fill, load, migrate and inspect a RAMCloud cluster from one client.",
        subcommands: [Fill.self, Run.self, Migrate.self, Summary.self, Counters.self, Owner.self])
}

struct Connection: ParsableArguments {
    @Option(help: "Where the cluster is: a zk: or RAMCloud locator (default: $FULVA_CLUSTER_STORAGE).")
    var storage: String?

    @Option(help: "Patched RAMCloud build (default: $FULVA_RAMCLOUD_HOME or ~/.cache/fulva/ramcloud).")
    var ramcloudHome: String?

    @Option(help: "Table to use.") var table = "workload"

    func connect() throws -> RAMCloudClient {
        guard let locator = storage ?? ProcessInfo.processInfo.environment["FULVA_CLUSTER_STORAGE"] else {
            throw ValidationError("no cluster given: --storage zk:HOST:PORT (or run under `rc-migrate cluster exec`)")
        }
        let home = ramcloudHome.map { RAMCloudHome(path: $0) } ?? RAMCloudHome()
        if let missing = home.missing { throw WorkloadError(missing) }
        let library = try RAMCloudLibrary(path: home.library)
        return try RAMCloudClient(library: library, coordinator: locator)
    }
}

struct WorkloadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func key(_ index: Int) -> [UInt8] { Array("key\(index)".utf8) }

func encode(_ value: Int64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

func decode(_ bytes: [UInt8]) -> Int64? {
    guard bytes.count == 8 else { return nil }
    return bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// CLOCK_MONOTONIC in nanoseconds: the clock other programs (and
/// `time.monotonic_ns()` in Python) read, so their windows line up.
func monotonicNanos() -> Int64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
}

/// One line of `run --history`.
struct TimedOperation: Codable {
    var kind: String
    /// CLOCK_MONOTONIC, nanoseconds.
    var start: Int64
    var end: Int64
    var failed: Bool
}

func note(_ message: String) {
    FileHandle.standardError.write(Data(("fulva-workload: " + message + "\n").utf8))
}

struct Fill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the table (if needed) and write key0..keyN-1 with 8-byte integer values.")
    @OptionGroup var connection: Connection
    @Option(help: "Number of keys.") var keys = 1000
    @Option(help: "Number of masters the new table's tablets are spread over.") var serverSpan: UInt32 = 1

    func run() throws {
        let client = try connection.connect()
        let table = try client.createTable(connection.table, serverSpan: serverSpan)
        let start = Date()
        for i in 0..<keys { try client.write(table: table, key: key(i), value: encode(Int64(i))) }
        try printJSON(["table": Double(table), "keys": Double(keys), "seconds": Date().timeIntervalSince(start)])
    }
}

/// What this client knows about one key: it is the only writer, so every
/// answer is predictable.
struct KnownObject {
    var value: Int64?
    var version: UInt64
}

enum OperationKind: String, CaseIterable, Codable {
    case read, write, increment, remove, conditionalWrite, staleConditionalWrite
}

struct LatencySummary: Codable {
    var count: UInt64
    var p50Micros: UInt64
    var p90Micros: UInt64
    var p99Micros: UInt64
    var p999Micros: UInt64
    var maxMicros: UInt64

    init(_ h: Histogram<UInt64>) {
        count = h.totalCount
        p50Micros = h.valueAtPercentile(50) / 1000
        p90Micros = h.valueAtPercentile(90) / 1000
        p99Micros = h.valueAtPercentile(99) / 1000
        p999Micros = h.valueAtPercentile(99.9) / 1000
        maxMicros = h.max / 1000
    }
}

struct RunResult: Codable {
    var operations: Int
    var failed: Int
    /// The first failures, described.
    var failures: [String]
    var seconds: Double
    var operationsPerSecond: Double
    /// Keys read back and compared at the end (--verify).
    var verified: Int
    var latency: LatencySummary
    var byKind: [String: LatencySummary]
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a mixed workload on a filled table and check every answer.",
        discussion: """
            The client is the table's only writer, so it knows what every read must
            return: a wrong value or version, or any error, counts as a failed
            operation. A conditional write with the current version must succeed and
            one with a stale version must be refused (STATUS_WRONG_VERSION).
            Progress lines ("progress N") go to stderr every --progress-every operations.

            Example:
              fulva-workload run --keys 1000 --operations 100000 --mix read=50,write=20,increment=10,remove=5,conditionalWrite=10,staleConditionalWrite=5
            """)
    @OptionGroup var connection: Connection
    @Option(help: "Number of keys (as filled).") var keys = 1000
    @Option(help: "Number of operations.") var operations = 10_000
    @Option(help: "Operation mix, kind=weight,... (kinds: \(OperationKind.allCases.map(\.rawValue).joined(separator: ", "))).")
    var mix = "read=50,write=20,increment=10,remove=5,conditionalWrite=10,staleConditionalWrite=5"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Print a progress line every N operations.") var progressEvery = 5000
    @Flag(help: "At the end, read every key back and check it against what this client wrote.") var verify = false
    @Option(help: "Write every operation's kind, start and end (CLOCK_MONOTONIC ns) and outcome to this file, a JSON line each (for `summary`).")
    var history: String?

    func parseMix() throws -> [(OperationKind, Int)] {
        var weights: [(OperationKind, Int)] = []
        for part in mix.split(separator: ",") {
            let pair = part.split(separator: "=")
            guard pair.count == 2, let kind = OperationKind(rawValue: String(pair[0])), let weight = Int(pair[1]), weight >= 0 else {
                throw ValidationError("bad --mix entry '\(part)' (kind=weight)")
            }
            weights.append((kind, weight))
        }
        guard weights.map(\.1).reduce(0, +) > 0 else { throw ValidationError("--mix has no positive weight") }
        return weights
    }

    func run() throws {
        let weights = try parseMix()
        guard keys > 0, operations >= 0 else { throw ValidationError("--keys must be positive and --operations not negative") }
        let client = try connection.connect()
        let table = try client.tableID(connection.table)

        // Learn the starting state: the table may have been filled or used before.
        var known: [KnownObject] = []
        known.reserveCapacity(keys)
        for i in 0..<keys {
            if let (bytes, version) = try client.read(table: table, key: key(i)) {
                guard let value = decode(bytes) else { throw WorkloadError("key\(i) does not hold an 8-byte integer") }
                known.append(KnownObject(value: value, version: version))
            } else {
                known.append(KnownObject(value: nil, version: 0))
            }
        }

        var random = SeededRandom(seed: seed)
        let totalWeight = weights.map(\.1).reduce(0, +)
        var all = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var byKind: [OperationKind: Histogram<UInt64>] = [:]
        var failed = 0
        var failures: [String] = []
        func fail(_ what: String) {
            failed += 1
            if failures.count < 20 { failures.append(what) }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        var timed: [TimedOperation] = []
        if history != nil { timed.reserveCapacity(operations) }
        for n in 0..<operations {
            var pick = Int(random.next() % UInt64(totalWeight))
            var kind = weights[0].0
            for (k, w) in weights { if pick < w { kind = k; break }; pick -= w }
            let i = Int(random.next() % UInt64(keys))
            let k = key(i)
            let before = known[i]
            let t0 = DispatchTime.now().uptimeNanoseconds
            let startedAt = monotonicNanos()
            let failedBefore = failed
            do {
                switch kind {
                case .read:
                    let answer = try client.read(table: table, key: k)
                    switch (answer, before.value) {
                    case (nil, nil): break
                    case let (got?, want?):
                        if decode(got.value) != want || got.version != before.version {
                            fail("read key\(i): got \(decode(got.value).map(String.init) ?? "?")@\(got.version), want \(want)@\(before.version)")
                        }
                    case let (got?, nil): fail("read key\(i): got \(decode(got.value).map(String.init) ?? "?") for a removed key")
                    case (nil, let want?): fail("read key\(i): missing, want \(want)")
                    }
                case .write:
                    let value = Int64(bitPattern: random.next() >> 1)
                    let version = try client.write(table: table, key: k, value: encode(value))
                    if version <= before.version { fail("write key\(i): version \(version) not above \(before.version)") }
                    known[i] = KnownObject(value: value, version: version)
                case .increment:
                    let delta = Int64(random.next() % 100) + 1
                    let value = try client.incrementInt64(table: table, key: k, by: delta)
                    let want = (before.value ?? 0) &+ delta
                    if value != want { fail("increment key\(i): got \(value), want \(want)") }
                    // The new version is learned by the next read of the key.
                    let reread = try client.read(table: table, key: k)
                    known[i] = KnownObject(value: value, version: reread?.version ?? 0)
                case .remove:
                    try client.remove(table: table, key: k)
                    known[i] = KnownObject(value: nil, version: before.version)
                case .conditionalWrite:
                    guard before.value != nil else {
                        // Nothing to condition on: a plain write keeps the key alive.
                        let value = Int64(n)
                        known[i] = KnownObject(value: value, version: try client.write(table: table, key: k, value: encode(value)))
                        break
                    }
                    let value = Int64(bitPattern: random.next() >> 1)
                    let version = try client.conditionalWrite(table: table, key: k, value: encode(value), expectedVersion: before.version)
                    known[i] = KnownObject(value: value, version: version)
                case .staleConditionalWrite:
                    guard before.value != nil, before.version > 0 else { break }
                    do {
                        let version = try client.conditionalWrite(table: table, key: k, value: encode(-1), expectedVersion: before.version - 1)
                        fail("stale conditional write key\(i) accepted (version \(version))")
                        known[i] = KnownObject(value: -1, version: version)
                    } catch let error as RAMCloudError where error.status == RAMCloudError.wrongVersion {
                        // Refused, as it must be.
                    }
                }
            } catch {
                fail("\(kind.rawValue) key\(i): \(error)")
                // The outcome is unknown: learn the key's state again.
                if let (bytes, version) = try? client.read(table: table, key: k) {
                    known[i] = KnownObject(value: decode(bytes), version: version)
                } else {
                    known[i] = KnownObject(value: nil, version: before.version)
                }
            }
            let elapsed = DispatchTime.now().uptimeNanoseconds - t0
            if history != nil {
                timed.append(TimedOperation(kind: kind.rawValue, start: startedAt, end: monotonicNanos(),
                                            failed: failed > failedBefore))
            }
            all.record(elapsed)
            byKind[kind, default: Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)]
                .record(elapsed)
            if progressEvery > 0 && (n + 1) % progressEvery == 0 { note("progress \(n + 1)") }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if let history {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var text = ""
            for operation in timed { text += String(decoding: try encoder.encode(operation), as: UTF8.self) + "\n" }
            do { try text.write(toFile: history, atomically: true, encoding: .utf8) } catch {
                throw WorkloadError("cannot write --history \(history): \(error)")
            }
        }
        var verified = 0
        if verify {
            for i in 0..<keys {
                do {
                    let answer = try client.read(table: table, key: key(i))
                    if answer.flatMap({ decode($0.value) }) != known[i].value {
                        fail("verify key\(i): got \(answer.flatMap { decode($0.value) }.map(String.init) ?? "nothing"), want \(known[i].value.map(String.init) ?? "nothing")")
                    } else if let answer, answer.version != known[i].version {
                        fail("verify key\(i): version \(answer.version), want \(known[i].version)")
                    }
                    verified += 1
                } catch {
                    fail("verify key\(i): \(error)")
                }
            }
        }
        let result = RunResult(operations: operations, failed: failed, failures: failures, seconds: seconds,
                               operationsPerSecond: seconds > 0 ? Double(operations) / seconds : 0, verified: verified,
                               latency: LatencySummary(all),
                               byKind: Dictionary(uniqueKeysWithValues: byKind.map { ($0.key.rawValue, LatencySummary($0.value)) }))
        try printJSON(result)
        if failed > 0 { throw ExitCode(1) }
    }
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a key-hash range of the table with RAMCloud's own source-driven migrateTablet.",
        discussion: """
            Examples:
              fulva-workload migrate --table workload --to-other
              fulva-workload migrate --first-hash 0 --last-hash 0xfffffffffffffff --split --to-other
            """)
    @OptionGroup var connection: Connection
    @Option(help: "First key hash of the range (decimal or 0x hex).", transform: parseHash) var firstHash: UInt64 = 0
    @Option(help: "Last key hash of the range.", transform: parseHash) var lastHash: UInt64 = .max
    @Flag(help: "Split the table's tablets at the range's ends first.") var split = false
    @Option(help: "Destination server id.") var to: UInt64?
    @Flag(help: "Move the range to a master other than its current owner.") var toOther = false

    func run() throws {
        guard firstHash <= lastHash else { throw ValidationError("--first-hash is above --last-hash") }
        let client = try connection.connect()
        let table = try client.tableID(connection.table)
        if split {
            if firstHash > 0 { try client.splitTablet(table: connection.table, splitKeyHash: firstHash) }
            if lastHash < .max { try client.splitTablet(table: connection.table, splitKeyHash: lastHash + 1) }
        }
        let source = try client.owner(table: table, keyHash: firstHash)
        var destination = to
        if toOther {
            destination = try client.serverCounters().map(\.serverID).sorted().first { $0 != source }
        }
        guard let destination else { throw ValidationError("no destination: --to ID or --to-other") }
        guard destination != source else { throw WorkloadError("server \(destination) already owns the range") }
        let start = Date()
        do {
            try client.migrateTablet(tableID: table, firstKeyHash: firstHash, lastKeyHash: lastHash,
                                     newOwner: destination)
        } catch {
            // Under frame loss one of the migration's RPCs may be delivered
            // twice, and the repeat fails although the migration happened:
            // the tablet map says whether it did.
            guard try client.owner(table: table, keyHash: firstHash) == destination else { throw error }
            FileHandle.standardError.write(Data(
                "migrateTablet reported \(error), but the tablet map shows the range at \(destination)\n".utf8))
        }
        let seconds = Date().timeIntervalSince(start)
        let owner = try client.owner(table: table, keyHash: firstHash)
        try printJSON(["source": Double(source), "destination": Double(destination), "owner": Double(owner),
                       "seconds": seconds])
        if owner != destination { throw WorkloadError("after the migration server \(owner) owns the range, not \(destination)") }
    }
}

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize a `run --history` file around a migration window.",
        discussion: """
            Prints, as text (or JSON with --json): operations and failed operations; latency
            p50/p99 of the operations started before, during and after the migration; and,
            per operation kind, the longest interval during the migration in which no
            operation of that kind completed (what a client perceives as downtime).
            The window is in CLOCK_MONOTONIC nanoseconds, as the history's times, or
            comes from the migration's record (--migration). With --run and --migration
            it also prints the run's throughput, latency and verified keys and the
            migration's figures. Exit status 1 when an operation failed or the
            migration did not end done.

            Examples:
              fulva-workload summary --history run.jsonl --migration-start 1200 --migration-end 3400
              fulva-workload summary --history run.jsonl --run run.json --migration status.json
            """)
    @Option(help: "The file `run --history` wrote.") var history: String
    @Option(help: "When the migration started (CLOCK_MONOTONIC ns).") var migrationStart: Int64?
    @Option(help: "When it ended (CLOCK_MONOTONIC ns).") var migrationEnd: Int64?
    @Option(help: "A file holding the migration as `rc-migrate status ID --json` printed it: its window (instead of --migration-start and --migration-end) and figures.")
    var migration: String?
    @Option(name: .customLong("run"), help: "A file holding what `run` printed: throughput, latency and verified keys.")
    var runOutput: String?
    @Flag(help: "JSON instead of text.") var json = false

    /// What the summary reads of `rc-migrate status ID --json`.
    struct MigrationStatus: Decodable {
        var id: UInt64
        var phase: String
        var source: UInt64
        var destination: UInt64
        var objectsMoved: UInt64
        var bytesMoved: UInt64
        /// Wall clock, milliseconds since the epoch.
        var createdAtMillis: Int64
        var updatedAtMillis: Int64
    }

    func decoded<T: Decodable>(_ type: T.Type, from path: String, what: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else { throw WorkloadError("cannot read \(what) \(path)") }
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw WorkloadError("\(path) is not what \(what) expects: \(error)")
        }
    }

    /// The migration window on CLOCK_MONOTONIC, the history's clock: the
    /// record's wall-clock times moved by the clocks' present difference.
    func window(_ status: MigrationStatus?) throws -> (start: Int64, end: Int64) {
        if let status {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            let offset = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec) - monotonicNanos()
            return (status.createdAtMillis * 1_000_000 - offset, status.updatedAtMillis * 1_000_000 - offset)
        }
        guard let migrationStart, let migrationEnd else {
            throw ValidationError("give the migration's window: --migration FILE, or --migration-start and --migration-end")
        }
        return (migrationStart, migrationEnd)
    }

    struct Output: Encodable {
        struct Phase: Encodable { var operations: Int; var p50Micros: Double; var p99Micros: Double }
        var operations: Int
        var failed: Int
        var before: Phase?
        var during: Phase?
        var after: Phase?
        /// Per kind, milliseconds.
        var longestGapDuringMigrationMillis: [String: Double]
    }

    func run() throws {
        let status = try migration.map { try decoded(MigrationStatus.self, from: $0, what: "--migration") }
        let result = try runOutput.map { try decoded(RunResult.self, from: $0, what: "--run") }
        let (migrationStart, migrationEnd) = try window(status)
        guard migrationStart <= migrationEnd else { throw ValidationError("the migration's start is after its end") }
        guard let text = try? String(contentsOfFile: history, encoding: .utf8) else {
            throw WorkloadError("cannot read --history \(history)")
        }
        let decoder = JSONDecoder()
        var operations: [RecordedOperation] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            guard let timed = try? decoder.decode(TimedOperation.self, from: Data(line.utf8)) else {
                throw WorkloadError("\(history):\(number + 1): not a history line")
            }
            let kind: FulvaCheck.OperationKind
            switch timed.kind {
            case "read": kind = .read
            case "write": kind = .write
            case "increment": kind = .increment
            case "remove": kind = .remove
            default: kind = .conditionalWrite
            }
            // The figures need only kinds, times and outcomes.
            operations.append(RecordedOperation(id: number, client: 0, kind: kind, key: "", input: .read,
                                                output: timed.failed ? nil : .absent,
                                                invokedAt: timed.start, completedAt: timed.end))
        }
        let figures = HistoryFigures(History(operations: operations,
                                             timeline: MigrationTimeline(startedAt: migrationStart, endedAt: migrationEnd)))
        let phase = { (p: LatencyPercentiles?) in
            p.map { Output.Phase(operations: $0.count, p50Micros: Double($0.p50) / 1000, p99Micros: Double($0.p99) / 1000) }
        }
        var gaps: [String: Double] = [:]
        for k in figures.kinds { if let gap = k.longestGapInMigration { gaps[k.kind.rawValue] = Double(gap) / 1e6 } }
        let output = Output(operations: figures.totalOperations, failed: figures.failedOperations,
                            before: phase(figures.latencyBefore), during: phase(figures.latencyDuring),
                            after: phase(figures.latencyAfter), longestGapDuringMigrationMillis: gaps)
        // A demo's verdict: every operation answered correctly, and the
        // migration ended done.
        let passed = output.failed == 0 && (result?.failed ?? 0) == 0 && (status.map { $0.phase == "done" } ?? true)
        if json {
            try printJSON(output)
            if !passed { throw ExitCode(1) }
            return
        }
        if let result {
            print(String(format: "  throughput      %.0f ops/s over %.1f s", result.operationsPerSecond, result.seconds))
            print("  latency         p50 \(result.latency.p50Micros) us, p99 \(result.latency.p99Micros) us, max \(result.latency.maxMicros) us")
            print("  verified        \(result.verified) keys read back as last written")
        }
        if let m = status {
            let seconds = Double(m.updatedAtMillis - m.createdAtMillis) / 1000
            print(String(format: "  migration %llu  %@: %llu objects, %.1f MB in %.2f s (%.1f MB/s), from master %llu to %llu",
                         m.id, m.phase, m.objectsMoved, Double(m.bytesMoved) / 1e6, seconds,
                         Double(m.bytesMoved) / 1e6 / max(seconds, 1e-3), m.source, m.destination))
        }
        let line = { (name: String, p: Output.Phase?) in
            p.map { String(format: "  latency %@  p50 %.0f us, p99 %.0f us (%d operations)", name, $0.p50Micros,
                           $0.p99Micros, $0.operations) } ?? "  latency \(name)  no operations"
        }
        print("  operations      \(output.operations) (\(output.failed) failed)")
        print(line("before", output.before))
        print(line("during", output.during))
        print(line("after ", output.after))
        print("  longest gap during the migration, per kind: "
            + gaps.sorted { $0.key < $1.key }.map { String(format: "%@ %.1f ms", $0.key, $0.value) }.joined(separator: ", "))
        if !passed { throw ExitCode(1) }
    }
}

func parseHash(_ text: String) throws -> UInt64 {
    let value = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
    guard let value else { throw ValidationError("'\(text)' is not a key hash (decimal or 0x hex)") }
    return value
}

struct Owner: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the table's owner (of key hash 0) and the other live masters, as JSON.")
    @OptionGroup var connection: Connection

    func run() throws {
        let client = try connection.connect()
        let owner = try client.owner(table: try client.tableID(connection.table), keyHash: 0)
        let others = try client.serverCounters().map(\.serverID).filter { $0 != owner }.sorted()
        print("{\"owner\":\(owner),\"others\":[\(others.map(String.init).joined(separator: ","))]}")
    }
}

struct Counters: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print every server's counters (RAMCloud PerfStats) as JSON.")
    @OptionGroup var connection: Connection

    func run() throws {
        let client = try connection.connect()
        try printJSON(try client.serverCounters())
    }
}
