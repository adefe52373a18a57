/// The source's side of one migration of one tablet (fulva and rocksteady;
/// the source-driven baseline is `SourceDrivenCopy`).
///
/// The host (a RAMCloud master, or the simulation) owns the hash table and
/// the log; this type decides what each request may do and when Prepare is
/// complete.
public struct SourceMigration: Hashable, Sendable {
    public enum Phase: Hashable, Sendable {
        /// Writes are refused; in-flight writes and prepared transactions
        /// on the tablet are still finishing.
        case draining
        /// The tablet's copy here no longer changes; the destination owns it.
        case frozen
        /// Cancelled during Prepare: the tablet is this server's again.
        case released
        /// The migration finished; the tablet is gone from this server.
        case dropped
    }

    public let id: MigrationID
    public let tablet: Tablet
    public let source: ServerID
    public let destination: ServerID
    public let strategy: Strategy
    public let layout: HashTableLayout
    /// Set when this is the reverse run of a cancelled migration (this server
    /// was its destination).
    public let reverse: ReverseRun?
    public private(set) var phase: Phase = .draining
    public private(set) var prepareResult: PrepareResult?
    let faults: ProtocolFaults

    public init(id: MigrationID, tablet: Tablet, source: ServerID, destination: ServerID,
                strategy: Strategy, layout: HashTableLayout, reverse: ReverseRun? = nil,
                faults: ProtocolFaults = .none) throws(FulvaError) {
        guard source != destination else { throw .sameSourceAndDestination(source) }
        guard strategy != .source else { throw .unknownStrategy("source (use SourceDrivenCopy)") }
        self.id = id
        self.tablet = tablet
        self.source = source
        self.destination = destination
        self.strategy = strategy
        self.layout = layout
        self.reverse = reverse
        self.faults = faults
    }

    public var identity: MigrationIdentity {
        MigrationIdentity(source: source, destination: destination, strategy: strategy,
                          tablet: tablet, layout: layout)
    }

    /// Completes Prepare once nothing that could still change the tablet is
    /// running. Returns nil while writes or prepared transactions remain.
    public mutating func completePrepare(inFlightWrites: Int, preparedTransactions: Int,
                                         safeVersion: Version,
                                         highestVersionInTablet: Version) -> PrepareResult? {
        if let done = prepareResult { return done }
        guard phase == .draining, inFlightWrites == 0, preparedTransactions == 0 else { return nil }
        let bound = VersionRule.versionBound(safeVersion: safeVersion,
                                             highestVersionInTablet: highestVersionInTablet,
                                             faults: faults)
        let result = PrepareResult(versionBound: bound, layout: layout)
        prepareResult = result
        phase = .frozen
        return result
    }

    /// Whether a linearizable-RPC completion record goes to the destination:
    /// those of the tablet's keys, so a retried RPC whose first execution
    /// happened here is not executed again there.
    public func handsOver(completionRecordFor tableID: UInt64, keyHash: KeyHash) -> Bool {
        !faults.contains(.completionRecordsNotHandedOver) && tablet.contains(tableID: tableID, keyHash: keyHash)
    }

    /// Cancelled during Prepare.
    public mutating func release() { phase = .released }

    /// The destination finished; drop the tablet.
    public mutating func drop() { phase = .dropped }

    public func admit(_ kind: RequestKind) -> Admission {
        switch phase {
        case .released: return .execute
        case .dropped: return .refuse
        case .draining, .frozen:
            switch kind {
            case .read:
                // Reads stay linearizable here while draining (this server
                // still owns the tablet); once frozen, the copy is served
                // with a tag so that the client also asks the destination.
                if strategy == .rocksteady { return .refuse }
                return .execute
            case .blindWrite, .blindRemove, .readModifyWrite, .enumeration:
                return .refuse
            }
        }
    }

    /// Source for pulls and priority pulls: only once frozen.
    public var servesPulls: Bool { phase == .frozen }

    /// For a reverse run's pull: which of this server's entries the old
    /// owner needs. Entries below the forward bound are copies it pulled
    /// from there and never changed.
    public func pullIncludes(_ entry: EntryVersion) -> Bool {
        guard let reverse else {
            if case .tombstone = entry { return false }  // a forward source holds none
            return true
        }
        return entry.isTombstone || entry.version >= reverse.forwardBound
    }

    /// The answer to a read here. `local` is the hash-table entry (a forward
    /// source holds no tombstones), `fetched` whether a reverse run's source
    /// had fetched the key during the forward run.
    public func answerRead(keyHash: KeyHash, local: EntryVersion?, fetched: Bool) -> LookupAnswer {
        if let local {
            switch local {
            case .object(let v): return .object(v)
            case .tombstone(let v): return .tombstone(v)
            }
        }
        guard let reverse else { return .absent }
        if fetched || reverse.forwardWatermarks?.isCovered(keyHash) == true { return .absent }
        return .notYetMoved(stale: nil)
    }

    /// The tag on replies about the tablet, once the source has frozen it or
    /// refuses a request for it. Nothing while released or dropped.
    public func tag(for hint: MigrationHint?) -> MigrationTag? {
        switch phase {
        case .released, .dropped: return nil
        case .draining, .frozen:
            let known = hint?.migration == id
            return MigrationTag(migration: id, role: .source, epoch: 0,
                                identity: known ? nil : identity, watermarks: [])
        }
    }

    /// Whether a read answer goes out tagged: a frozen copy is never
    /// returned to the caller on its own.
    public var tagsReads: Bool { phase == .frozen }
}
