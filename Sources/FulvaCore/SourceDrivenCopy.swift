/// RAMCloud's own source-driven migration (MasterService::migrateTablet), as
/// the baseline Fulva is measured against: the source copies the tablet to
/// the destination while it keeps serving, re-sends what changed behind the
/// copy, then locks the tablet for the final transfer of ownership. The
/// destination serves nothing until then; the locked window is downtime.
public struct SourceDrivenCopy: Hashable, Sendable {
    public enum Phase: Hashable, Sendable {
        case copying
        /// Writes wait while the last changes go over and ownership moves.
        case locked
        case transferred
        case aborted
    }

    public let id: MigrationID
    public let tablet: Tablet
    public let source: ServerID
    public let destination: ServerID
    public private(set) var phase: Phase = .copying
    public private(set) var schedule: PullSchedule

    public init(id: MigrationID, tablet: Tablet, source: ServerID, destination: ServerID,
                layout: HashTableLayout, bucketsPerBatch: UInt64, pipelineDepth: Int) throws(FulvaError) {
        guard source != destination else { throw .sameSourceAndDestination(source) }
        self.id = id
        self.tablet = tablet
        self.source = source
        self.destination = destination
        self.schedule = PullSchedule(layout: layout, bucketsPerBatch: bucketsPerBatch,
                                     pipelineDepth: pipelineDepth)
    }

    /// Batches to push to the destination next.
    public mutating func nextPushes() -> [PullBatch] {
        phase == .copying ? schedule.nextPulls() : []
    }

    public mutating func pushAcknowledged(_ batch: PullBatch) {
        if schedule.received(batch) { schedule.replayed(batch) }
    }

    public mutating func pushFailed(_ batch: PullBatch) { schedule.failed(batch) }

    /// A write of this key during the copy must be sent again if the copy
    /// already passed (or is passing) its bucket.
    public func writeNeedsResend(keyHash: KeyHash) -> Bool {
        let layout = schedule.layout
        let bucket = layout.bucket(of: keyHash)
        let p = layout.partition(ofBucket: bucket)
        let mark = schedule.watermarks.buckets[p]
        if bucket < mark { return true }
        // In flight or received but not yet acknowledged counts as passed.
        return schedule.inFlightCount > 0
    }

    /// The bulk copy is over: lock the tablet and send what changed.
    public mutating func lockIfCopied() -> Bool {
        guard phase == .copying, schedule.isComplete else { return false }
        phase = .locked
        return true
    }

    public mutating func transferred() { phase = .transferred }
    public mutating func abort() { if phase == .copying { phase = .aborted } }

    /// What the source does with a request on the tablet.
    public func admitAtSource(_ kind: RequestKind) -> Admission {
        switch phase {
        case .copying, .aborted: return .execute
        case .locked: return kind == .read ? .execute : .retryLater
        case .transferred: return .refuse
        }
    }

    /// The destination serves nothing before the transfer.
    public func admitAtDestination(_ kind: RequestKind) -> Admission {
        phase == .transferred ? .execute : .refuse
    }
}
