import Atomics
import Foundation
import FulvaCheck
import FulvaCluster
import FulvaClient
import FulvaCore
import FulvaRAMCloud
import FulvaZooKeeper
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The operations of the clients of one run, as they complete.
final class HistoryRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var operations: [RecordedOperation] = []
    private var nextID = 0

    func record(_ make: (Int) -> RecordedOperation) {
        lock.lock()
        defer { lock.unlock() }
        operations.append(make(nextID))
        nextID += 1
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return operations.count
    }

    var all: [RecordedOperation] {
        lock.lock()
        defer { lock.unlock() }
        return operations
    }
}

func monotonicNanos() -> Int64 { monotonicMicros() * 1000 }

extension FulvaMigrationTests {
    static let hotKeys = 200

    static func protocolKey(_ index: Int) -> [UInt8] { Array("k\(index)".utf8) }

    static func int64(_ bytes: [UInt8]) -> Int64? {
        guard bytes.count == 8 else { return nil }
        return bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
    }

    static func bytes(_ value: Int64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    /// One protocol client's operation, as the checker records it.
    static func recorded(id: Int, client: Int, key: String, input: RecordedInput, kind: OperationKind,
                         report: ProtocolClient.Report, invokedAt: Int64, completedAt: Int64) -> RecordedOperation {
        var output: RecordedOutput?
        switch report.outcome {
        case .found(let value, let version):
            // A value that is not 8 bytes is nothing this test wrote: leave
            // it unexplained so the checker flags it.
            output = .found(value: int64(value) ?? .min, version: version)
        case .absent: output = .absent
        case .written(let version): output = .written(version: version)
        case .removed(let version): output = .removed(version: version == 0 ? nil : version)
        case .incremented(let value, let version): output = .incremented(value: value, version: version)
        case .rejected(let status):
            output = .rejected(status == RAMCloudError.objectDoesntExist ? .objectDoesntExist
                               : status == RAMCloudError.wrongVersion ? .wrongVersion : .objectExists)
        case .failed: output = nil
        }
        return RecordedOperation(id: id, client: client, kind: kind, key: key, input: input, output: output,
                                 invokedAt: invokedAt, completedAt: completedAt,
                                 routing: OperationRouting(roundTrips: report.roundTrips, dualRead: report.dualRead,
                                                           progressBytes: report.tagBytes))
    }

    /// Four clients speaking the Fulva protocol run a mixed workload while a
    /// table of 200,000 objects migrates; at least 30% of their operations
    /// hit 200 hot keys, none of which has moved when the migration starts.
    /// Every operation is recorded with its start and end; no outcome within
    /// 1 s counts as failed. The checker finds the history linearizable,
    /// nothing failed, the destination ends with exactly the state the
    /// history implies, the source with none of the table, and both dual
    /// reads and priority pulls happened.
    @Test func protocolClientsSeeALinearizableHistory() throws {
        // The clients wait for replies without spinning a core each (five
        // RAMCloud processes and four clients share two cores here).
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let cluster = try TestCluster(Self.spec(), seconds: 540, what: "protocolClientsSeeALinearizableHistory")
        defer { cluster.stop() }
        let state = cluster.state
        try Self.waitForPlugins(state)
        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let table = try admin.createTable("protocol")

        let initial = try Self.fillProtocolTable(admin, table: table, keys: Self.keys)
        let source = try admin.owner(table: table, keyHash: 0)
        let destination = try #require(try Self.masters(admin).first { $0 != source })

        // The clients: 40% of operations on the hot keys, the rest anywhere.
        let clients = 4
        let load = ProtocolLoad(library: library, coordinator: state.externalStorage, table: table, keys: Self.keys,
                                clients: clients)
        defer { _ = load.finish() }
        let (recorder, connectionErrors) = (load.recorder, load.errors)
        for _ in 0..<600 where recorder.count < 4000 { usleep(50_000) }
        #expect(recorder.count >= 4000, "the clients are running: \(connectionErrors.all.prefix(3))")

        // The migration, while the clients run.
        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage))
        var request = MigrationRequest(id: MigrationID(0), tablet: Tablet(tableID: table), source: ServerID(source),
                                       destination: ServerID(destination), strategy: .fulva, partitions: 8)
        request.id = try store.create(request, at: Int64(Date().timeIntervalSince1970 * 1000)).id
        let migrationStart = monotonicNanos()
        try admin.startMigration(request)
        var record = try admin.migrationStatus(destination: ServerID(destination), id: request.id)
        for _ in 0..<2400 where !record.phase.isTerminal {
            usleep(50_000)
            record = try admin.migrationStatus(destination: ServerID(destination), id: request.id)
        }
        let migrationEnd = monotonicNanos()
        #expect(record.phase == .done, "the migration finished: \(record.lastError ?? "")")
        usleep(300_000)
        #expect(load.finish(), "the clients stopped")

        var operations = recorder.all
        let failed = operations.filter(\.failed)
        let hot = operations.filter { Int($0.key.dropFirst())! < Self.hotKeys }
        let during = operations.filter { $0.completedAt >= migrationStart && $0.invokedAt <= migrationEnd }
        let hotDuring = during.filter { Int($0.key.dropFirst())! < Self.hotKeys }
        let dualReads = operations.filter(\.routing.dualRead).count
        let tagBytes = operations.reduce(0) { $0 + $1.routing.progressBytes }
        let latencies = operations.map { $0.completedAt - $0.invokedAt }.sorted()
        print("protocol clients: \(operations.count) operations (\(hot.count) on hot keys, \(during.count) during the "
            + "migration, \(hotDuring.count) of them hot), \(failed.count) failed, \(dualReads) dual reads, "
            + "\(tagBytes) tag bytes; latency p50 \(latencies[latencies.count / 2] / 1000) us, "
            + "p99 \(latencies[latencies.count * 99 / 100] / 1000) us, max \(latencies.last! / 1000) us; "
            + String(format: "migration %.2f s", Double(migrationEnd - migrationStart) / 1e9))
        #expect(failed.isEmpty, "failed operations: \(connectionErrors.all.prefix(5))")
        #expect(Double(hot.count) >= 0.3 * Double(operations.count), "at least 30% of operations on hot keys")
        #expect(hotDuring.count > 0, "hot keys were used while the migration ran")
        #expect(dualReads > 0, "reads went to the source and the destination at once")

        // The destination's final state, read key by key from it directly
        // after everything else, joins the history: the checker then
        // confirms it is exactly what the history implies.
        let verifier = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let final = try Self.finalState(verifier, server: ServerID(destination), table: table, keys: Self.keys,
                                        client: clients, firstID: operations.count)
        operations += final.reads
        let (present, tagged) = (final.present, final.tagged)
        #expect(tagged == 0, "the destination owns the table normally: no reply carries a tag")
        let history = History(operations: operations, initialValues: initial,
                              timeline: MigrationTimeline(startedAt: migrationStart, endedAt: migrationEnd))
        let checked = Date()
        let result = LinearizabilityChecker.check(history)
        print("checker: \(result.keysChecked) keys, \(result.operationsChecked) operations, "
            + String(format: "%.1f s", Date().timeIntervalSince(checked)))
        #expect(result.isLinearizable, "\(result.violations.prefix(2))")
        #expect(!operations.suffix(Self.keys).contains { $0.failed }, "the destination answered every key")

        // The source holds nothing of the table; the destination exactly
        // the objects that exist.
        let whole = Tablet(tableID: table)
        #expect(try admin.inventory(server: ServerID(source), tablet: whole).objects == 0, "the source holds nothing")
        let held = try admin.inventory(server: ServerID(destination), tablet: whole)
        #expect(held.objects == UInt64(present))
        // Every value is 8 bytes and every key "k" and up to 6 digits, with
        // RAMCloud's few bytes of key lengths beside them.
        #expect((held.objects * 10...held.objects * 19).contains(held.bytes), "the inventory's bytes: \(held.bytes)")

        // The destination fetched keys ahead of their batches.
        let pulls = try Self.priorityPulls(state)
        print("priority pulls: \(pulls)")
        #expect((pulls[request.id] ?? 0) > 0, "priority pulls happened: \(pulls)")
    }

    /// Fills a table for protocol clients: key k<i> holds i. Returns the
    /// initial state for the checker, with the versions the writes reported.
    static func fillProtocolTable(_ admin: RAMCloudClient, table: UInt64, keys: Int) throws -> [String: RecordedInitialObject] {
        var initial: [String: RecordedInitialObject] = [:]
        initial.reserveCapacity(keys)
        let fillStart = Date()
        for i in 0..<keys {
            let version = try admin.write(table: table, key: protocolKey(i), value: bytes(Int64(i)))
            initial["k\(i)"] = RecordedInitialObject(value: Int64(i), version: version)
        }
        print(String(format: "filled %d objects in %.1f s", keys, Date().timeIntervalSince(fillStart)))
        return initial
    }

    /// Every key of the table read from `server` at once, after everything
    /// else: reads for the checker (client `client`), so the history must
    /// imply exactly this state. `tagged` counts replies with a tag.
    static func finalState(_ verifier: RAMCloudClient, server: ServerID, table: UInt64, keys: Int, client: Int,
                           firstID: Int) throws -> (reads: [RecordedOperation], present: Int, tagged: Int) {
        var reads: [RecordedOperation] = []
        var present = 0
        var tagged = 0
        for batch in stride(from: 0, to: keys, by: 200) {
            let indices = Array(batch..<min(batch + 200, keys))
            let invokedAt = monotonicNanos()
            let replies = try verifier.execute(indices.map {
                DirectRequest(server: server, tableID: table, key: protocolKey($0), kind: .read(hint: nil))
            }, timeoutMicros: 10_000_000)
            let completedAt = monotonicNanos()
            for (index, reply) in zip(indices, replies) {
                if reply.tag != nil { tagged += 1 }
                let output: RecordedOutput?
                switch reply.answer {
                case .object(let version)?:
                    present += 1
                    output = .found(value: int64(reply.value) ?? .min, version: version)
                case .absent?: output = .absent
                default: output = nil
                }
                reads.append(RecordedOperation(id: firstID + reads.count, client: client, kind: .read, key: "k\(index)",
                                               input: .read, output: output, invokedAt: invokedAt,
                                               completedAt: completedAt))
            }
        }
        return (reads, present, tagged)
    }

    /// Priority pulls per migration, from the destinations' "finished here" log lines.
    static func priorityPulls(_ state: ClusterState) throws -> [MigrationID: Int] {
        var pulls: [MigrationID: Int] = [:]
        for name in ["master1", "master2"] {
            let log = try String(contentsOfFile: try #require(state.process(name)).log, encoding: .utf8)
            for line in log.split(separator: "\n") where line.contains("finished here") {
                // "... Fulva: migration M finished here: N priority pulls, ..."
                guard let id = line.split(separator: "migration ").last?.split(separator: " ").first.flatMap({ UInt64($0) }),
                      let count = line.split(separator: ":").last?.split(separator: " ").first.flatMap({ Int($0) })
                else { continue }
                pulls[MigrationID(id)] = count
            }
        }
        return pulls
    }

    /// Waits until every master logged that it loaded the plugin.
    static func waitForPlugins(_ state: ClusterState, masters: [String] = ["master1", "master2"]) throws {
        for name in masters {
            let path = try #require(state.process(name)).log
            var loaded = false
            for _ in 0..<200 where !loaded {
                loaded = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").contains("loaded (ABI version")
                if !loaded { usleep(50_000) }
            }
            #expect(loaded, "\(name) loaded the plugin")
        }
    }
}

/// Clients speaking the Fulva protocol, each on its own thread and
/// connection, running a mixed workload (half reads; writes of values no
/// other write uses, removes, increments) until stopped, 40% of it on the
/// first `hotKeys` keys; every operation recorded for the checker, no
/// outcome within 1 s counted as failed.
final class ProtocolLoad: @unchecked Sendable {
    let recorder = HistoryRecorder()
    let errors = HistoryErrors()
    private let stop = ManagedAtomic<Bool>(false)
    private let group = DispatchGroup()

    init(library: RAMCloudLibrary, coordinator: String, table: UInt64, keys: Int, hotKeys: Int = FulvaMigrationTests.hotKeys,
         clients: Int) {
        for c in 0..<clients {
            group.enter()
            let (recorder, errors, stop, group) = (recorder, errors, stop, group)
            let thread = Thread {
                defer { group.leave() }
                do {
                    let connection = try RAMCloudClient(library: library, coordinator: coordinator)
                    let client = ProtocolClient(connection: connection, deadlineMicros: 1_000_000)
                    var random = SeededRandom(seed: UInt64(1000 + c))
                    var sequence: Int64 = 0
                    let started = Date()
                    while !stop.load(ordering: .relaxed) && sequence < 60_000 && Date().timeIntervalSince(started) < 180 {
                        sequence += 1
                        let index = random.next(upperBound: UInt64(100)) < 40 ? Int(random.next(upperBound: UInt64(hotKeys)))
                                                                   : Int(random.next(upperBound: UInt64(keys)))
                        let key = FulvaMigrationTests.protocolKey(index)
                        let roll = random.next(upperBound: UInt64(100))
                        let invokedAt = monotonicNanos()
                        let input: RecordedInput, kind: OperationKind, report: ProtocolClient.Report
                        switch roll {
                        case 0..<50:
                            (input, kind) = (.read, .read)
                            report = client.read(table: table, key: key)
                        case 50..<75:
                            // A value no other write uses.
                            let value = Int64(c + 1) << 40 | sequence
                            (input, kind) = (.write(value: value, rejectRules: nil), .write)
                            report = client.write(table: table, key: key, value: FulvaMigrationTests.bytes(value))
                        case 75..<85:
                            (input, kind) = (.remove(rejectRules: nil), .remove)
                            report = client.remove(table: table, key: key)
                        default:
                            (input, kind) = (.increment(delta: 1, rejectRules: nil), .increment)
                            report = client.increment(table: table, key: key, by: 1)
                        }
                        let completedAt = monotonicNanos()
                        recorder.record {
                            FulvaMigrationTests.recorded(id: $0, client: c, key: "k\(index)", input: input, kind: kind,
                                                         report: report, invokedAt: invokedAt, completedAt: completedAt)
                        }
                        if case .failed(let why) = report.outcome { errors.add("client \(c): \(why)") }
                    }
                } catch {
                    errors.add("client \(c): \(error)")
                }
            }
            thread.start()
        }
    }

    /// Stops the clients; false when they did not stop within a minute.
    func finish() -> Bool {
        stop.store(true, ordering: .relaxed)
        return group.wait(timeout: .now() + 60) == .success
    }
}

/// Messages collected from several threads.
final class HistoryErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ message: String) {
        lock.lock()
        messages.append(message)
        lock.unlock()
    }
    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return messages
    }
}
