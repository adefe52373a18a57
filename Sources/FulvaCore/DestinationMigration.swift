/// The destination's side of one migration of one tablet: it drives the
/// migration (prepare, pulls, replay, finish), decides what each request on
/// the tablet may do, and publishes progress.
public struct DestinationMigration: Hashable, Sendable {
    public enum Phase: Hashable, Sendable {
        /// Waiting for the source to freeze the tablet, then for the
        /// coordinator to hand the tablet over (a cancel may still win).
        case preparing
        /// Owns the tablet; data is moving.
        case moving
        /// Every partition replayed; the tablet is normal here.
        case finished
        /// Cancelled: the tablet is not (or no longer) this server's.
        case abandoned
    }

    public struct Tuning: Hashable, Sendable {
        public var partitions: Int
        public var bucketsPerBatch: UInt64
        public var pipelineDepth: Int
        public init(partitions: Int = 8, bucketsPerBatch: UInt64 = 256, pipelineDepth: Int = 2) {
            self.partitions = partitions
            self.bucketsPerBatch = bucketsPerBatch
            self.pipelineDepth = pipelineDepth
        }
    }

    public let id: MigrationID
    public let tablet: Tablet
    public let source: ServerID
    public let destination: ServerID
    public let strategy: Strategy
    public let reverse: ReverseRun?
    public let tuning: Tuning
    public private(set) var phase: Phase = .preparing
    public private(set) var versionFloor: Version?
    public private(set) var schedule: PullSchedule?
    /// Bumped whenever a watermark moves; clients name the last one they saw.
    public private(set) var epoch: UInt32 = 1
    var partitionEpochs: [UInt32] = []
    let faults: ProtocolFaults

    public init(id: MigrationID, tablet: Tablet, source: ServerID, destination: ServerID,
                strategy: Strategy, reverse: ReverseRun? = nil, tuning: Tuning = Tuning(),
                faults: ProtocolFaults = .none) throws(FulvaError) {
        guard source != destination else { throw .sameSourceAndDestination(source) }
        guard strategy != .source else { throw .unknownStrategy("source (use SourceDrivenCopy)") }
        self.id = id
        self.tablet = tablet
        self.source = source
        self.destination = destination
        self.strategy = strategy
        self.reverse = reverse
        self.tuning = tuning
        self.faults = faults
    }

    public var layout: HashTableLayout? { schedule?.layout }
    public var watermarks: Watermarks? { schedule?.watermarks }

    /// The source froze the tablet. The host now installs the completion
    /// records, raises its segment safeVersion to the bound (keys created
    /// here after the migration must not reuse a version the source
    /// assigned), and asks the coordinator to map the tablet here.
    public mutating func prepared(_ result: PrepareResult) {
        guard phase == .preparing else { return }
        versionFloor = result.versionBound
        // The source cut its buckets into the partitions this side asked for
        // in its prepare request; clients get the same layout.
        let layout = result.layout
        schedule = PullSchedule(layout: layout, bucketsPerBatch: tuning.bucketsPerBatch,
                                pipelineDepth: tuning.pipelineDepth, faults: faults)
        partitionEpochs = Array(repeating: 1, count: layout.partitionCount)
    }

    /// The coordinator mapped the tablet here (the record's conditional
    /// write from preparing to moving won): writes may run here from now on.
    public mutating func tookOwnership() {
        guard phase == .preparing, schedule != nil else { return }
        phase = .moving
    }

    public var isPrepared: Bool { schedule != nil }

    public mutating func abandon() { phase = .abandoned }

    // MARK: Moving data

    public mutating func nextPulls(limit: Int = .max) -> [PullBatch] {
        guard phase == .moving else { return [] }
        return schedule?.nextPulls(limit: limit) ?? []
    }

    /// A pull reply arrived; false means drop it (stale or duplicate).
    public mutating func pullArrived(_ batch: PullBatch, resumeAt: UInt64?) -> Bool {
        guard phase == .moving, schedule != nil else { return false }
        let before = schedule!.watermarks
        let accepted = schedule!.received(batch, resumeAt: resumeAt)
        noteWatermarkChanges(since: before)
        return accepted
    }

    public mutating func pullFailed(_ batch: PullBatch) {
        guard phase == .moving else { return }
        schedule?.failed(batch)
    }

    /// The entries of a received batch are in the hash table.
    public mutating func batchReplayed(_ batch: PullBatch) {
        guard phase == .moving, schedule != nil else { return }
        let before = schedule!.watermarks
        schedule!.replayed(batch)
        noteWatermarkChanges(since: before)
    }

    public var everythingReplayed: Bool { schedule?.isComplete ?? false }

    /// All partitions replayed: the tablet becomes normal here; the host
    /// then has the source drop it, marks the record done, and clears the
    /// tombstones it kept.
    public mutating func finish() -> Bool {
        guard phase == .moving, everythingReplayed else { return false }
        phase = .finished
        epoch &+= 1
        return true
    }

    private mutating func noteWatermarkChanges(since before: Watermarks) {
        guard let now = schedule?.watermarks, now != before else { return }
        epoch &+= 1
        for p in 0..<now.buckets.count where now.buckets[p] != before.buckets[p] {
            partitionEpochs[p] = epoch
        }
    }

    // MARK: Serving

    public func isCovered(_ keyHash: KeyHash) -> Bool {
        phase == .finished || (watermarks?.isCovered(keyHash) ?? false)
    }

    /// Whether this server's entry (or absence) for the key is the latest
    /// state. `fetched` says a priority pull already brought the key.
    public func knowsKey(keyHash: KeyHash, local: EntryVersion?, fetched: Bool) -> Bool {
        if fetched || isCovered(keyHash) { return true }
        guard let local else { return false }
        guard let reverse, !faults.contains(.reverseTrustsOldEntries) else { return true }
        // A reverse run's destination still holds its old copy of the
        // tablet: only entries written since the forward run began count
        // (every write there, and every tombstone, got at least the bound).
        return local.version >= reverse.forwardBound
    }

    public func admit(_ kind: RequestKind, keyHash: KeyHash, local: EntryVersion?, fetched: Bool) -> Admission {
        switch phase {
        case .preparing: return kind == .enumeration ? .refuse : .retryLater
        case .abandoned: return .refuse
        case .finished: return .execute
        case .moving: break
        }
        switch kind {
        case .blindWrite, .blindRemove:
            return .execute
        case .enumeration:
            return .refuse
        case .readModifyWrite:
            return knowsKey(keyHash: keyHash, local: local, fetched: fetched) ? .execute : .priorityFetchFirst
        case .read:
            if strategy == .rocksteady && !knowsKey(keyHash: keyHash, local: local, fetched: fetched) {
                return .retryAfterPriorityFetch
            }
            return .execute
        }
    }

    /// The answer to a read admitted with `.execute`. The host loads the
    /// watermark before looking the key up (or does both under the bucket
    /// lock): a replay racing the read must not turn a miss into a false
    /// "absent".
    public func answerRead(keyHash: KeyHash, local: EntryVersion?, fetched: Bool) -> LookupAnswer {
        let known = knowsKey(keyHash: keyHash, local: local, fetched: fetched)
        switch local {
        case .object(let v)?:
            return known ? .object(v) : .notYetMoved(stale: .object(v))
        case .tombstone(let v)?:
            if faults.contains(.tombstoneAnsweredAsMiss) { return .notYetMoved(stale: nil) }
            return .tombstone(v)
        case nil:
            if known { return .absent }
            return .notYetMoved(stale: reverse == nil ? nil : .absent)
        }
    }

    /// The version a write gets here while the tablet migrates.
    public func versionForWrite(existing: EntryVersion?, safeVersion: Version) -> Version {
        VersionRule.nextVersion(existing: existing, safeVersion: safeVersion,
                                floor: phase == .finished ? nil : versionFloor)
    }

    /// A remove here leaves a tombstone in the hash table until the
    /// migration is done, so that neither a later replay nor a dual read
    /// brings the source's older copy back. Its version beats every copy at
    /// the source.
    public func tombstoneForRemove(existing: EntryVersion?, safeVersion: Version) -> EntryVersion? {
        if phase == .finished || faults.contains(.removeDropsTombstone) { return nil }
        return .tombstone(versionForWrite(existing: existing, safeVersion: safeVersion))
    }

    /// Whether a replayed entry goes into the hash table.
    public func replayInstalls(_ incoming: EntryVersion, over local: EntryVersion?) -> Bool {
        ReplayRule.replaces(incoming, over: local)
    }

    /// The tag on replies about the tablet, with the watermarks that moved
    /// since the client's epoch (all of them, and who moves what, for a
    /// client that has not seen this migration yet).
    public func tag(for hint: MigrationHint?) -> MigrationTag? {
        switch phase {
        case .abandoned: return nil
        case .finished:
            // Only a client that still thinks the migration runs is told it ended.
            guard hint?.migration == id else { return nil }
            return MigrationTag(migration: id, role: .ended, epoch: epoch)
        case .preparing, .moving:
            let known = hint?.migration == id ? hint!.epoch : 0
            guard let marks = watermarks, let layout else {
                // Still preparing: nothing to report beyond who answers.
                return MigrationTag(migration: id, role: .destination, epoch: 0)
            }
            var updates: [MigrationTag.WatermarkUpdate] = []
            for p in 0..<marks.buckets.count where partitionEpochs[p] > known {
                updates.append(.init(partition: UInt16(p), bucket: UInt32(marks.buckets[p])))
            }
            let identity = known == 0
                ? MigrationIdentity(source: source, destination: destination, strategy: strategy,
                                    tablet: tablet, layout: layout)
                : nil
            return MigrationTag(migration: id, role: .destination, epoch: epoch,
                                identity: identity, watermarks: updates)
        }
    }
}
