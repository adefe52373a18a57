/// Where a migration stands, as its record in ZooKeeper says. Every change
/// is a conditional write on the record, so a cancel and a completion cannot
/// both win.
public enum MigrationPhase: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The source is freezing the tablet (source-driven: copying while serving).
    case preparing
    /// The destination owns the tablet; data is moving.
    case moving
    /// A cancel after Prepare: the tablet is moving back to the source.
    case cancelling
    case done
    case cancelled
    case failed

    public var isTerminal: Bool { self == .done || self == .cancelled || self == .failed }

    public var description: String { rawValue }

    /// The legal successors of each phase.
    public func mayBecome(_ next: MigrationPhase) -> Bool {
        switch (self, next) {
        case (.preparing, .moving), (.preparing, .cancelled), (.preparing, .failed),
             (.moving, .done), (.moving, .cancelling), (.moving, .failed),
             (.cancelling, .cancelled), (.cancelling, .failed):
            return true
        default:
            return false
        }
    }
}

/// One migration's record.
public struct MigrationRecord: Hashable, Sendable {
    public var id: MigrationID
    public var tablet: Tablet
    public var source: ServerID
    public var destination: ServerID
    public var strategy: Strategy
    public var phase: MigrationPhase
    /// The store's revision of the record (ZooKeeper's znode version).
    public var revision: UInt64
    /// Version bound reported by the source at the end of Prepare.
    public var versionBound: Version?
    public var progress: Double
    public var objectsMoved: UInt64
    public var bytesMoved: UInt64
    /// The source's hash-table buckets, and how many of them are replayed
    /// (the watermarks' progress summed over partitions).
    public var bucketCount: UInt64
    public var bucketsReplayed: UInt64
    public var pullBatches: UInt64
    /// Milliseconds since the epoch (wall clock of whoever wrote the record).
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastError: String?
    /// The most bytes per second the destination pulls (0: no limit). The
    /// operator may change it while the migration runs.
    public var throttleBytesPerSecond: UInt64 = 0
    /// When the record entered each phase after the first (preparing
    /// starts at `createdAt`), milliseconds since the epoch.
    public var enteredAt: [MigrationPhase: Int64] = [:]
    /// A cancel after Prepare: the reverse run that moves the tablet back
    /// (set on the cancelled migration), and the migration a reverse run
    /// cancels (set on the reverse run).
    public var reversedBy: MigrationID?
    public var reverseOf: MigrationID?
    /// The destination has moved every batch and begun finishing (the
    /// source drops its copy): too late to cancel.
    public var finishing = false

    /// How long each phase the record went through lasted, in
    /// milliseconds; a phase not yet left counts until `now`.
    public func phaseDurations(now: Int64) -> [(phase: MigrationPhase, millis: Int64)] {
        var starts: [(MigrationPhase, Int64)] = [(.preparing, createdAt)]
        starts += enteredAt.sorted { ($0.value, $0.key.rawValue) < ($1.value, $1.key.rawValue) }.map { ($0.key, $0.value) }
        return starts.enumerated().compactMap { index, entry in
            if entry.0.isTerminal { return nil }
            let end = index + 1 < starts.count ? starts[index + 1].1 : now
            return (entry.0, max(0, end - entry.1))
        }
    }

    public init(id: MigrationID, tablet: Tablet, source: ServerID, destination: ServerID,
                strategy: Strategy, createdAt: Int64 = 0) {
        self.id = id
        self.tablet = tablet
        self.source = source
        self.destination = destination
        self.strategy = strategy
        self.phase = .preparing
        self.revision = 0
        self.versionBound = nil
        self.progress = 0
        self.objectsMoved = 0
        self.bytesMoved = 0
        self.bucketCount = 0
        self.bucketsReplayed = 0
        self.pullBatches = 0
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.lastError = nil
    }

    /// The record after a phase change; the caller writes it conditionally
    /// on `revision`.
    public func moved(to next: MigrationPhase, at time: Int64, error: String? = nil) throws(FulvaError) -> MigrationRecord {
        guard phase.mayBecome(next) else { throw .illegalTransition(id, from: phase, to: next) }
        var copy = self
        copy.phase = next
        copy.updatedAt = time
        copy.enteredAt[next] = time
        if let error { copy.lastError = error }
        return copy
    }

    /// Why a migration that has not ended cannot go on, when its source or
    /// destination is no longer among the cluster's live servers (it
    /// crashed), and what that means for the tablet; nil otherwise. The
    /// destination drives the migration, so a dead destination leaves no
    /// one to say so but the operator's tools.
    public func failureCause(liveServers: Set<ServerID>) -> String? {
        guard !phase.isTerminal else { return nil }
        let percent = Int((progress * 100).rounded(.down))
        switch (liveServers.contains(source), liveServers.contains(destination)) {
        case (true, true):
            return nil
        case (_, false):
            return "destination \(destination) crashed (\(phase), \(percent)% moved): RAMCloud recovers \(tablet) from "
                + "its log; recovered into the source \(source), the log goes on top of the frozen copy (higher versions "
                + "win) and the tablet is whole again; recovered on another master, keys not yet moved are missing "
                + "there until moved again from \(source)"
        case (false, true):
            return "source \(source) crashed (\(phase), \(percent)% moved): \(destination) serves \(tablet); keys "
                + "not yet moved (\(100 - percent)% of its buckets) are unavailable until RAMCloud has recovered "
                + "\(source): its entries of the tablet are recovered into \(destination), under what it holds (higher "
                + "versions win), and the tablet is whole there again"
        }
    }

    /// What a cancel does in the current phase.
    public func cancelAction() throws(FulvaError) -> CancelAction {
        switch phase {
        case .preparing: return .releaseSource
        case .moving:
            if strategy == .source { throw .cancelTooLate(id, phase) }
            if finishing { throw .invalidRequest("\(id) is finishing (every batch has moved): too late to cancel") }
            return .reverse
        case .cancelling, .done, .cancelled, .failed: throw .cancelTooLate(id, phase)
        }
    }

    public enum CancelAction: Hashable, Sendable {
        /// During Prepare: the source unfreezes and the destination drops the tablet.
        case releaseSource
        /// After Prepare: run the protocol backwards, the old source as destination.
        case reverse
    }
}

/// A migration as the operator asks for it and the destination receives it.
public struct MigrationRequest: Hashable, Sendable {
    public var id: MigrationID
    public var tablet: Tablet
    public var source: ServerID
    public var destination: ServerID
    public var strategy: Strategy
    /// Partitions of the source's hash table pulled in parallel; 0: the default.
    public var partitions: Int
    /// The migration this one cancels: a reverse run, from that
    /// migration's destination back to its source (DESIGN.md §3, Cancel).
    public var reverses: MigrationID?

    /// The most partitions a migration may have: every reply tag can then
    /// carry all of their watermarks (fulva.h's FULVA_TAG_CAPACITY).
    public static let maxPartitions = 256

    public init(id: MigrationID, tablet: Tablet, source: ServerID, destination: ServerID,
                strategy: Strategy = .fulva, partitions: Int = 0, reverses: MigrationID? = nil) {
        self.id = id
        self.reverses = reverses
        self.tablet = tablet
        self.source = source
        self.destination = destination
        self.strategy = strategy
        self.partitions = partitions
    }

    /// The record of a new migration for this request.
    public func record(createdAt: Int64) -> MigrationRecord {
        var record = MigrationRecord(id: id, tablet: tablet, source: source, destination: destination, strategy: strategy,
                                     createdAt: createdAt)
        record.reverseOf = reverses
        return record
    }

    /// The reverse run that cancels the migration of `record` after
    /// Prepare: the same tablet, from its destination back to its source,
    /// always by Fulva's rules (the old source keeps serving from its old
    /// copy, whatever the forward strategy was).
    public static func reverse(of record: MigrationRecord, id: MigrationID) -> MigrationRequest {
        MigrationRequest(id: id, tablet: record.tablet, source: record.destination, destination: record.source,
                         strategy: .fulva, reverses: record.id)
    }

    /// How many migrations may run at once in a cluster unless the
    /// operator says otherwise (`rc-migrate start --max-active`).
    public static let defaultActiveLimit = 4

    /// Checks a migration request before anything in the cluster changes:
    /// distinct servers, no overlap with a migration that has not ended,
    /// and fewer than `limit` of those.
    public static func validate(tablet: Tablet, source: ServerID, destination: ServerID,
                                active: [MigrationRecord], limit: Int = .max) throws(FulvaError) {
        guard source != destination else { throw .sameSourceAndDestination(source) }
        try admit(tablet, active: active, limit: limit)
    }

    /// The part of `validate` that needs only the records: no overlap with
    /// a migration that has not ended, and fewer than `limit` of those.
    public static func admit(_ tablet: Tablet, active: [MigrationRecord], limit: Int = .max) throws(FulvaError) {
        let running = active.filter { !$0.phase.isTerminal }
        if let busy = running.first(where: { $0.tablet.overlaps(tablet) }) {
            throw .tabletBusy(tablet, busy.id)
        }
        guard running.count < limit else { throw .tooManyMigrations(running: running.map(\.id), limit: limit) }
    }

    /// Settles starts that raced: two operators may both pass `validate`
    /// before either record exists. Ids come from ZooKeeper's counter, so
    /// they order the starts; a new record stands only if it passes the
    /// same checks against the records created before it.
    public static func settle(_ record: MigrationRecord, among records: [MigrationRecord],
                              limit: Int = .max) throws(FulvaError) {
        let earlier = records.filter { $0.id.rawValue < record.id.rawValue }
        try validate(tablet: record.tablet, source: record.source, destination: record.destination,
                     active: earlier, limit: limit)
    }
}
