import FulvaCore
#if canImport(Glibc)
import Glibc
#endif

/// What the source answered to Prepare.
public struct PreparedSource: Hashable, Sendable {
    public var versionBound: Version
    public var bucketCount: UInt64
    public var partitions: Int
    public var completionRecords: Int

    public init(versionBound: Version, bucketCount: UInt64, partitions: Int, completionRecords: Int) {
        self.versionBound = versionBound
        self.bucketCount = bucketCount
        self.partitions = partitions
        self.completionRecords = completionRecords
    }
}

/// How one pulled batch went: replayed (with how far it reached) or failed.
public enum PullOutcome: Hashable, Sendable {
    case replayed(objects: Int, bytes: UInt64, resumeBucket: UInt64)
    case failed(status: Int32)
}

/// A failure reported by the host, with its status and message.
public struct HostError: Error, Hashable, Sendable, CustomStringConvertible {
    public var status: Int32
    public var message: String
    public init(status: Int32, message: String) {
        self.status = status
        self.message = message
    }
    public var description: String { message.isEmpty ? "status \(status)" : message }
    /// fulva.h's FULVA_ERROR_UNAVAILABLE: not now; asking again later may work.
    public static let unavailable: Int32 = 1001
    /// fulva.h's FULVA_ERROR_CANCELLED: an operator cancelled the
    /// migration; its reverse run (or the source, before Prepare) has the
    /// tablet.
    public static let cancelled: Int32 = 1006
}

public enum LogLevel: Int32, Sendable { case debug = 0, notice, warning, error }

/// Everything the manager does to the world goes through its host: the C++
/// side of a RAMCloud master (through fulva.h), or a test double. Calls may
/// block; the manager makes them from the thread that drives a migration.
public protocol MigrationHost: AnyObject {
    func log(_ level: LogLevel, _ message: String)
    func prepareSource(_ request: MigrationRequest) throws(HostError) -> PreparedSource
    func takeOwnership(_ request: MigrationRequest, prepared: PreparedSource) throws(HostError)
    func pull(_ request: MigrationRequest, _ batches: [PullBatch]) -> [PullOutcome]
    func publishWatermark(_ id: MigrationID, partition: Int, bucket: UInt64)
    func finish(_ request: MigrationRequest) throws(HostError)
    func abandon(_ request: MigrationRequest) throws(HostError)
}

public extension MigrationRecord {
    var isActive: Bool { !phase.isTerminal }
}

/// Where the migration's durable record lives (ZooKeeper in a master).
/// `update` applies a change as a conditional write and throws when the
/// record refuses it (a phase change FulvaCore forbids, such as moving a
/// cancelled migration) or cannot be reached.
public protocol MigrationRecordSink: AnyObject {
    func update(_ id: MigrationID, _ change: (inout MigrationRecord) throws -> Void) throws
}

/// Fulva's migration manager in one master: the destination side drives
/// migrations (prepare, ownership, pulls, replay, watermarks, finish), the
/// source side admits them and computes their version bound. Every
/// protocol decision is FulvaCore's; this class sequences them and keeps
/// the bookkeeping the host and operators read.
public final class MigrationManager: @unchecked Sendable {
    public struct Defaults: Sendable {
        public var partitions = 8
        public var bucketsPerBatch: UInt64 = 1024
        public var pipelineDepth = 2
        /// A migration fails when every pull has failed this many rounds in
        /// a row and for at least `pullFailureWindowMillis`: a busy source
        /// (transport timeouts under load) is waited for, a dead one is not
        /// waited for forever.
        public var pullAttempts = 5
        public var pullFailureWindowMillis: Int64 = 30_000
        /// The pause after a round in which every pull failed.
        public var pullRetryPauseMicros: UInt32 = 50_000
        /// Prepare is asked again this many times when the source answers
        /// "unavailable" (it unfroze the tablet: transactions prepared
        /// there before the freeze were not decided in time), after a pause.
        public var prepareAttempts = 4
        public var prepareRetryPauseMicros: UInt32 = 200_000
        public init() {}
    }

    let host: MigrationHost
    let serverID: ServerID
    let defaults: Defaults
    /// Durable records; nil runs without (tests, or a cluster without ZooKeeper).
    let records: MigrationRecordSink?
    private let lock = PthreadLock()
    private var destinations: [MigrationID: (request: MigrationRequest, record: MigrationRecord, failure: HostError?)] = [:]
    private var sources: [MigrationID: SourceMigration] = [:]

    public init(host: MigrationHost, serverID: ServerID, defaults: Defaults = Defaults(),
                records: MigrationRecordSink? = nil) {
        self.host = host
        self.serverID = serverID
        self.defaults = defaults
        self.records = records
    }

    /// Copies this master's view of a migration into its durable record.
    /// A phase change the record refuses is an error; figures are best effort.
    private func publish(_ id: MigrationID, phase: MigrationPhase? = nil, finishing: Bool = false) throws(HostError) {
        guard let records, let (mine, _) = status(id) else { return }
        var throttle = mine.throttleBytesPerSecond
        var cancelled = false
        do {
            try records.update(id) { record in
                // The operator sets the throttle in the record; it comes
                // back from there.
                throttle = record.throttleBytesPerSecond
                // An operator's cancel: this run stops at its next step.
                if record.phase == .cancelling || record.phase == .cancelled {
                    cancelled = true
                    throw FulvaError.cancelTooLate(id, record.phase)
                }
                if finishing { record.finishing = true }
                if let phase, record.phase != phase {
                    record = try record.moved(to: phase, at: mine.updatedAt, error: mine.lastError)
                }
                record.versionBound = mine.versionBound ?? record.versionBound
                record.progress = mine.progress
                record.objectsMoved = mine.objectsMoved
                record.bytesMoved = mine.bytesMoved
                record.bucketCount = mine.bucketCount
                record.bucketsReplayed = mine.bucketsReplayed
                record.pullBatches = mine.pullBatches
                record.updatedAt = mine.updatedAt
            }
        } catch {
            if cancelled { throw HostError(status: HostError.cancelled, message: "\(id) was cancelled") }
            throw HostError(status: 1001, message: "the migration record refused \(phase.map { "the change to \($0)" } ?? "an update"): \(error)")
        }
        lock.withLock { destinations[id]?.record.throttleBytesPerSecond = throttle }
    }

    // MARK: Destination

    /// Admits a migration to this master, or says why not. The caller then
    /// runs `drive` for it.
    public func accept(_ request: MigrationRequest) throws(FulvaError) {
        guard request.destination == serverID else {
            throw .invalidRequest("this is \(serverID), not the destination \(request.destination)")
        }
        guard request.source != request.destination else { throw .sameSourceAndDestination(request.source) }
        guard request.strategy != .source else { throw .unknownStrategy("source (RAMCloud's own migrateTablet)") }
        guard request.partitions >= 0, request.partitions <= MigrationRequest.maxPartitions else {
            throw .invalidRequest("partitions must be in 0...\(MigrationRequest.maxPartitions)")
        }
        try lock.withLock { () throws(FulvaError) in
            guard destinations[request.id] == nil else { throw .invalidRequest("\(request.id) is already known here") }
            try MigrationRequest.validate(tablet: request.tablet, source: request.source, destination: request.destination,
                                          active: destinations.values.map(\.record))
            destinations[request.id] = (request, request.record(createdAt: Self.nowMillis()), nil)
        }
    }

    /// The record of a migration this master is (or was) the destination
    /// of, and the host's failure when it failed.
    public func status(_ id: MigrationID) -> (record: MigrationRecord, failure: HostError?)? {
        lock.withLock { destinations[id].map { ($0.record, $0.failure) } }
    }

    public var destinationRecords: [MigrationRecord] {
        lock.withLock { destinations.values.map(\.record) }
    }

    private func update(_ id: MigrationID, _ change: (inout MigrationRecord) -> Void) {
        lock.withLock {
            if destinations[id] != nil {
                change(&destinations[id]!.record)
                destinations[id]!.record.updatedAt = Self.nowMillis()
            }
        }
    }

    /// Moves the record to `phase`; FulvaCore says which changes are legal.
    private func enter(_ id: MigrationID, _ phase: MigrationPhase, error: HostError? = nil) {
        lock.withLock {
            guard let entry = destinations[id],
                  let next = try? entry.record.moved(to: phase, at: Self.nowMillis(), error: error?.description) else { return }
            destinations[id]!.record = next
            if let error { destinations[id]!.failure = error }
        }
    }

    /// Runs an accepted migration to its end. Blocks; returns the final record.
    @discardableResult
    public func drive(_ id: MigrationID) -> MigrationRecord? {
        guard let request = lock.withLock({ destinations[id]?.request }) else { return nil }
        var prepared = false
        do throws(HostError) {
            try run(request, prepared: &prepared)
            // The record says "finishing" before the source drops its
            // copy: a cancel that got to the record first stops this run
            // here, with the frozen copy still there for the reverse run,
            // and a cancel that comes later is refused. Done is recorded
            // once the source has dropped the copy, so a migration that
            // starts after it never meets the copy's leftovers.
            try publish(id, finishing: true)
            try host.finish(request)
            enter(id, .done)
            try publish(id, phase: .done)
            host.log(.notice, "\(id): \(request.tablet) moved from \(request.source) to \(request.destination)")
        } catch where error.status == HostError.cancelled {
            // Before Prepare the source never froze the tablet: undo this
            // side. After it, the reverse run takes the tablet from here.
            if !prepared {
                do throws(HostError) { try host.abandon(request) } catch let undo {
                    host.log(.error, "\(id): undoing after the cancel failed: \(undo)")
                }
                enter(id, .cancelled)
            } else {
                // Over here: the reverse run, driven by the source, ends
                // the record (cancelling, then cancelled).
                enter(id, .cancelling)
                enter(id, .cancelled)
            }
            host.log(.notice, "\(id) cancelled: \(error)")
            return status(id)?.record
        } catch {
            fail(request, error)
            return status(id)?.record
        }
        if let forward = request.reverses, let records {
            do {
                try records.update(forward) { record in
                    if record.phase != .cancelled {
                        record = try record.moved(to: .cancelled, at: Self.nowMillis())
                    }
                }
            } catch {
                host.log(.error, "\(forward): the record did not take the cancel's end: \(error)")
            }
        }
        return status(id)?.record
    }

    private func fail(_ request: MigrationRequest, _ error: HostError) {
        let id = request.id
        host.log(.error, "\(id) failed: \(error)")
        do throws(HostError) { try host.abandon(request) } catch let undo {
            host.log(.error, "\(id): undoing after the failure also failed: \(undo)")
        }
        enter(id, .failed, error: error)
        do throws(HostError) { try publish(id, phase: .failed) } catch let unrecorded {
            host.log(.error, "\(id): \(unrecorded)")
        }
    }

    private func run(_ request: MigrationRequest, prepared sourcePrepared: inout Bool) throws(HostError) {
        let partitions = request.partitions > 0 ? request.partitions : defaults.partitions
        var request = request
        request.partitions = partitions
        let tuning = DestinationMigration.Tuning(partitions: partitions, bucketsPerBatch: defaults.bucketsPerBatch,
                                                 pipelineDepth: defaults.pipelineDepth)
        var migration: DestinationMigration
        do {
            migration = try DestinationMigration(id: request.id, tablet: request.tablet, source: request.source,
                                                 destination: request.destination, strategy: request.strategy,
                                                 tuning: tuning)
        } catch {
            throw HostError(status: 1000, message: "\(error)")
        }

        // The record moves from preparing to moving before the source
        // freezes the tablet: the conditional write settles a race with a
        // cancel (one that got there first wins, and nothing was frozen),
        // and waiting for ZooKeeper stays out of the window in which
        // neither server takes writes of the tablet.
        try publish(request.id, phase: .moving)
        enter(request.id, .moving)

        // Prepare: the source freezes and drains the tablet and hands over
        // its completion records; its bucket count fixes the layout.
        var attempt = 1
        let prepared: PreparedSource
        while true {
            do {
                prepared = try host.prepareSource(request)
                sourcePrepared = true
                break
            } catch where error.status == HostError.unavailable && attempt < defaults.prepareAttempts {
                attempt += 1
                usleep(defaults.prepareRetryPauseMicros)
            }
        }
        let layout: HashTableLayout
        do {
            layout = try HashTableLayout(bucketCount: prepared.bucketCount, partitionCount: min(partitions, Int(prepared.bucketCount)))
        } catch {
            throw HostError(status: 1002, message: "the source's hash table cannot be partitioned: \(error)")
        }
        migration.prepared(PrepareResult(versionBound: prepared.versionBound, layout: layout))
        update(request.id) {
            $0.versionBound = prepared.versionBound
            $0.bucketCount = prepared.bucketCount
        }

        // Ownership: from here writes of the tablet run here.
        var owned = prepared
        owned.partitions = layout.partitionCount
        try host.takeOwnership(request, prepared: owned)
        migration.tookOwnership()

        // Move the data: parallel pulls, each replayed before its watermark
        // moves, no faster than the throttle in the record.
        var throttle = Throttle(bytesPerSecond: status(request.id)?.record.throttleBytesPerSecond ?? 0,
                                nowMicros: Self.monotonicMicros())
        var failuresInARow = 0
        var failingSince: Int64 = 0
        var lastPublished = Self.nowMillis()
        while !migration.everythingReplayed {
            let batches = migration.nextPulls()
            guard !batches.isEmpty else {
                throw HostError(status: 1002, message: "no batch to pull while partitions remain (schedule stalled)")
            }
            let before = migration.watermarks
            let outcomes = host.pull(request, batches)
            guard outcomes.count == batches.count else {
                throw HostError(status: 1002, message: "the host answered \(outcomes.count) of \(batches.count) pulls")
            }
            var objects: UInt64 = 0, bytes: UInt64 = 0, failed = 0
            for (batch, outcome) in zip(batches, outcomes) {
                switch outcome {
                case let .replayed(count, size, resume):
                    let cut: UInt64? = resume < batch.buckets.upperBound ? resume : nil
                    if migration.pullArrived(batch, resumeAt: cut) {
                        migration.batchReplayed(batch)
                        objects += UInt64(count)
                        bytes += size
                    }
                case .failed(let status):
                    if status == HostError.cancelled {
                        throw HostError(status: status, message: "the reverse run of a cancel took the tablet")
                    }
                    migration.pullFailed(batch)
                    failed += 1
                }
            }
            if failed == batches.count {
                if failuresInARow == 0 { failingSince = Self.nowMillis() }
                failuresInARow += 1
                let failingFor = Self.nowMillis() - failingSince
                if failuresInARow >= defaults.pullAttempts && failingFor >= defaults.pullFailureWindowMillis {
                    throw HostError(status: 1001, message: "pulls from \(request.source) failed \(failuresInARow) "
                        + "times in a row over \(failingFor) ms")
                }
                usleep(defaults.pullRetryPauseMicros)
            } else {
                failuresInARow = 0
            }
            if let after = migration.watermarks, let before {
                for p in 0..<after.buckets.count where after.buckets[p] != before.buckets[p] {
                    host.publishWatermark(request.id, partition: p, bucket: after.buckets[p])
                }
                let replayed = (0..<after.buckets.count).reduce(UInt64(0)) {
                    $0 + (after.buckets[$1] - layout.buckets(ofPartition: $1).lowerBound)
                }
                update(request.id) {
                    $0.bucketsReplayed = replayed
                    $0.progress = Double(replayed) / Double(max(layout.bucketCount, 1))
                    $0.objectsMoved += objects
                    $0.bytesMoved += bytes
                    $0.pullBatches += UInt64(batches.count)
                }
            }
            // Progress reaches the record about four times a second, also
            // while the throttle holds the pulls back (its pauses are at
            // most a quarter of a second, and a new rate counts at once).
            var moved = bytes
            while true {
                if Self.nowMillis() - lastPublished >= 250 {
                    lastPublished = Self.nowMillis()
                    do throws(HostError) { try publish(request.id) } catch {
                        if error.status == HostError.cancelled { throw error }
                        host.log(.warning, "\(request.id): progress not recorded: \(error)")
                    }
                }
                throttle.set(bytesPerSecond: status(request.id)?.record.throttleBytesPerSecond ?? 0,
                             nowMicros: Self.monotonicMicros())
                let pause = throttle.pause(afterMoving: moved, nowMicros: Self.monotonicMicros())
                moved = 0
                guard pause > 0 else { break }
                usleep(UInt32(pause))
            }
        }
        guard migration.finish() else { throw HostError(status: 1002, message: "the migration could not finish") }
    }

    // MARK: Source

    /// The source drained the tablet: admit the migration here and return
    /// its version bound (above every version the tablet ever had).
    public func sourcePrepare(_ request: MigrationRequest, bucketCount: UInt64, safeVersion: Version,
                              highestVersion: Version) throws(FulvaError) -> Version {
        let partitions = request.partitions > 0 ? request.partitions : defaults.partitions
        let layout = try HashTableLayout(bucketCount: bucketCount, partitionCount: min(partitions, Int(bucketCount)))
        return try lock.withLock { () throws(FulvaError) -> Version in
            if let busy = sources.values.first(where: { $0.tablet.overlaps(request.tablet) && $0.id != request.id }) {
                throw .tabletBusy(busy.tablet, busy.id)
            }
            var source: SourceMigration
            if let known = sources[request.id] {
                source = known
            } else {
                source = try SourceMigration(id: request.id, tablet: request.tablet, source: request.source,
                                             destination: request.destination, strategy: request.strategy, layout: layout)
            }
            // The host drained writes and prepared transactions before asking.
            guard let result = source.completePrepare(inFlightWrites: 0, preparedTransactions: 0, safeVersion: safeVersion,
                                                      highestVersionInTablet: highestVersion) else {
                throw .invalidRequest("\(request.id) cannot complete Prepare")
            }
            sources[request.id] = source
            return result.versionBound
        }
    }

    /// The source dropped (or released) the tablet.
    public func sourceEnded(_ id: MigrationID) {
        lock.withLock { _ = sources.removeValue(forKey: id) }
    }

    static func monotonicMicros() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }

    static func nowMillis() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

/// A pthread mutex: Synchronization.Mutex collapses under contention on
/// Linux with this toolchain (DESIGN.md §4).
final class PthreadLock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
