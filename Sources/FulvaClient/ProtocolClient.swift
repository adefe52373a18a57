import CFulva
import FulvaCore

#if canImport(Glibc)
import Glibc
#endif

/// A RAMCloud client that speaks Fulva's client protocol: it learns of
/// migrations from reply tags, reads keys not yet moved from the source and
/// the destination at once, and sends writes of a migrating tablet straight
/// to the destination. Every decision comes from FulvaCore's client rules
/// (ClientRead, ClientWrite, ClientMigrationTable); this class only carries
/// them out over a `DirectTransport`: a connection that loads libramcloud
/// (FulvaRAMCloud's RAMCloudClient), or libramcloud itself when this runs
/// as its client shim.
///
/// Each operation has a deadline: an operation with no outcome by then is
/// reported failed, and nothing is retried beyond what the rules ask for.
/// Not thread-safe, like the connection under it.
public final class ProtocolClient {
    public enum Outcome: Hashable, Sendable {
        case found(value: [UInt8], version: UInt64)
        case absent
        case written(version: UInt64)
        /// The removed object's version; 0 when there was none.
        case removed(version: UInt64)
        case incremented(value: Int64, version: UInt64)
        /// A reject rule refused the operation (RAMCloud's status).
        case rejected(status: Int32)
        case failed(String)
    }

    /// One operation's outcome and how it travelled.
    public struct Report: Sendable {
        public var outcome: Outcome
        /// Rounds of requests (a dual read sent at once is one round).
        public var roundTrips = 0
        /// The read went to the source and the destination.
        public var dualRead = false
        /// Bytes of migration tags in the replies.
        public var tagBytes = 0
    }

    public let connection: any DirectTransport
    /// What this client knows of running migrations.
    public private(set) var migrations = ClientMigrationTable<[UInt8]>()
    /// Tables whose owners must be looked up afresh (the map is stale).
    private var staleTables: Set<UInt64> = []
    public let deadlineMicros: Int64
    /// The largest value a read returns whole.
    public let valueCapacity: Int

    public init(connection: any DirectTransport, deadlineMicros: Int64 = 1_000_000,
                valueCapacity: Int = DirectCalls.valueCapacity) {
        self.connection = connection
        self.deadlineMicros = deadlineMicros
        self.valueCapacity = valueCapacity
    }

    /// Absorbs a tag from a reply this client did not ask for through the
    /// rules (a stock reply). Returns false when the reply must not be used
    /// on its own: it came from a source's frozen copy, or speaks of a
    /// migration this client saw end.
    public func learn(_ tag: MigrationTag) -> Bool {
        let current = migrations.learn(tag)
        noteFlushes()
        return current && tag.role != .source
    }

    /// The migration this client knows to cover the key and its
    /// destination, where requests for the key go; nil when the tablet map
    /// decides.
    public func destination(table: UInt64, keyHash: KeyHash) -> (MigrationID, ServerID)? {
        guard let view = migrations.migration(tableID: table, keyHash: keyHash), view.strategy != .source,
              let destination = view.destination
        else { return nil }
        return (view.id, destination)
    }

    // RAMCloud's statuses the rules act on (src/Status.h).
    static let statusRetry: Int32 = 17
    static let unknownTablet: Int32 = 1
    static let rejections: Set<Int32> = [3, 4, 5]   // object doesn't exist, object exists, wrong version

    // MARK: reads

    public func read(table: UInt64, key: [UInt8], rejectRules: RejectRules? = nil) -> Report {
        var report = readLatest(table: table, key: key)
        // RAMCloud's reject rules, on the answer the rules chose.
        if let rejectRules {
            var current: Version?
            switch report.outcome {
            case .found(_, let version): current = version
            case .absent: current = nil
            default: return report
            }
            switch rejectRules.evaluate(currentVersion: current) {
            case .objectDoesntExist?: report.outcome = .rejected(status: 3)
            case .objectExists?: report.outcome = .rejected(status: 4)
            case .wrongVersion?: report.outcome = .rejected(status: 5)
            case nil: break
            }
        }
        return report
    }

    private func readLatest(table: UInt64, key: [UInt8]) -> Report {
        let end = monotonicMicros() + deadlineMicros
        var report = Report(outcome: .failed("not started"))
        let keyHash: KeyHash
        do { keyHash = try connection.keyHash(table: table, key: key) } catch {
            report.outcome = .failed("\(error)")
            return report
        }
        var read = ClientRead<[UInt8]>(tableID: table, key: key, keyHash: keyHash)
        // The replies of this operation, by server: a decision may rest on
        // an answer of an earlier round.
        var replies: [ServerID: DirectReply] = [:]
        var step = read.start(table: migrations, owner: owner(table: table, key: key, keyHash: keyHash))
        var refreshes = 0
        while true {
            guard let left = remaining(until: end, report: &report) else { return report }
            switch step {
            case .send(let servers):
                report.roundTrips += 1
                if servers.count > 1 { report.dualRead = true }
                let requests = servers.map {
                    DirectRequest(server: $0, tableID: table, key: key, kind: .read(hint: read.hint),
                                  valueCapacity: valueCapacity)
                }
                let answers: [DirectReply]
                do {
                    answers = try connection.execute(requests, timeoutMicros: UInt32(left))
                } catch {
                    report.outcome = .failed("\(error)")
                    return report
                }
                var next = ClientStep.wait
                for (server, reply) in zip(servers, answers) {
                    report.tagBytes += reply.tagBytes
                    if reply.unanswered {
                        report.outcome = .failed("no answer from server \(server.rawValue)")
                        return report
                    }
                    let decided: ClientStep
                    switch reply.status {
                    case 0:
                        replies[server] = reply
                        decided = read.received(reply.answer!, tag: reply.tag, from: server, table: &migrations)
                    case Self.unknownTablet:
                        decided = read.unknownTablet(tag: reply.tag, from: server, table: &migrations)
                    case Self.statusRetry:
                        decided = read.retry(from: server)
                    default:
                        report.outcome = .failed("server \(server.rawValue): RAMCloud status \(reply.status)")
                        return report
                    }
                    if decided != .wait { next = decided }
                }
                noteFlushes()
                step = next == .wait ? .retryLater : next
            case .complete(let server):
                guard let reply = replies[server] else {
                    report.outcome = .failed("the rules chose a reply that never came")
                    return report
                }
                report.outcome = .found(value: reply.value, version: reply.version)
                return report
            case .completeAbsent:
                report.outcome = .absent
                return report
            case .refreshMap:
                staleTables.insert(table)
                if refreshes > 0 { pause() }
                refreshes += 1
                replies.removeAll()
                step = read.start(table: migrations, owner: owner(table: table, key: key, keyHash: keyHash))
            case .retryLater, .wait:
                pause()
                replies.removeAll()
                step = read.start(table: migrations, owner: owner(table: table, key: key, keyHash: keyHash))
            }
        }
    }

    // MARK: writes, removes, increments

    public func write(table: UInt64, key: [UInt8], value: [UInt8], rejectRules: RejectRules? = nil) -> Report {
        update(table: table, key: key, kind: .write(value: value), rejectRules: rejectRules)
    }

    public func remove(table: UInt64, key: [UInt8], rejectRules: RejectRules? = nil) -> Report {
        update(table: table, key: key, kind: .remove, rejectRules: rejectRules)
    }

    public func increment(table: UInt64, key: [UInt8], by delta: Int64, rejectRules: RejectRules? = nil) -> Report {
        update(table: table, key: key, kind: .increment(delta: delta), rejectRules: rejectRules)
    }

    private func update(table: UInt64, key: [UInt8], kind: DirectRequest.Kind, rejectRules: RejectRules?) -> Report {
        let end = monotonicMicros() + deadlineMicros
        var report = Report(outcome: .failed("not started"))
        let keyHash: KeyHash
        do { keyHash = try connection.keyHash(table: table, key: key) } catch {
            report.outcome = .failed("\(error)")
            return report
        }
        var write = ClientWrite<[UInt8]>(tableID: table, keyHash: keyHash)
        var step = write.start(table: migrations, owner: owner(table: table, key: key, keyHash: keyHash))
        var refreshes = 0
        while true {
            guard let left = remaining(until: end, report: &report) else { return report }
            switch step {
            case .send(let servers):
                guard let server = servers.first else {
                    step = .refreshMap
                    continue
                }
                report.roundTrips += 1
                let request = DirectRequest(server: server, tableID: table, key: key, kind: kind,
                                            rejectRules: rejectRules)
                let reply: DirectReply
                do { reply = try connection.execute([request], timeoutMicros: UInt32(left))[0] } catch {
                    report.outcome = .failed("\(error)")
                    return report
                }
                if reply.unanswered {
                    report.outcome = .failed("no answer from server \(server.rawValue)")
                    return report
                }
                if reply.status == 0 || Self.rejections.contains(reply.status) {
                    _ = write.executed(tag: reply.tag, from: server, table: &migrations)
                    noteFlushes()
                    if reply.status != 0 {
                        report.outcome = .rejected(status: reply.status)
                    } else {
                        switch kind {
                        case .write: report.outcome = .written(version: reply.version)
                        case .remove: report.outcome = .removed(version: reply.version)
                        case .increment: report.outcome = .incremented(value: reply.newValue, version: reply.version)
                        case .read: report.outcome = .failed("a read through update()")
                        }
                    }
                    return report
                }
                guard reply.status == Self.unknownTablet else {
                    report.outcome = .failed("server \(server.rawValue): RAMCloud status \(reply.status)")
                    return report
                }
                step = write.unknownTablet(tag: reply.tag, from: server, table: &migrations)
                noteFlushes()
            case .refreshMap:
                staleTables.insert(table)
                // The source refuses writes from Prepare until the
                // coordinator maps the tablet to the destination: a short
                // window in which the map still names the source.
                if refreshes > 0 { pause() }
                refreshes += 1
                step = write.start(table: migrations, owner: owner(table: table, key: key, keyHash: keyHash))
            default:
                pause()
                step = write.start(table: migrations, owner: owner(table: table, key: key, keyHash: keyHash))
            }
        }
    }

    /// Microseconds left before `end`, or nil with the report failed.
    private func remaining(until end: Int64, report: inout Report) -> Int64? {
        let left = end - monotonicMicros()
        guard left > 0 else {
            report.outcome = .failed("no outcome within \(deadlineMicros) us")
            return nil
        }
        return left
    }

    // MARK: the tablet map

    /// The key's owner by RAMCloud's tablet map: the cached one, or a fresh
    /// one from the coordinator when the table's entry is stale.
    private func owner(table: UInt64, key: [UInt8], keyHash: KeyHash) -> ServerID? {
        let fresh = staleTables.remove(table) != nil
        return try? connection.owner(table: table, key: key, keyHash: keyHash, fresh: fresh)
    }

    /// Migrations that ended leave tablet-map entries to flush.
    private func noteFlushes() {
        for tablet in migrations.takeFlushes() { staleTables.insert(tablet.tableID) }
    }

    private func pause() { usleep(200) }
}

/// Microseconds on the monotonic clock.
public func monotonicMicros() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}
