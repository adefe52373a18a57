/// What a request does to the tablet, as far as migration cares.
public enum RequestKind: Hashable, Sendable, CaseIterable {
    case read
    /// A write without reject rules.
    case blindWrite
    /// A remove without reject rules.
    case blindRemove
    /// Conditional writes and removes, increments, transaction prepares: the
    /// outcome depends on the key's current value.
    case readModifyWrite
    /// Enumeration and index lookups: they need the whole tablet.
    case enumeration
}

/// A server's decision about one request on a tablet it migrates.
public enum Admission: Hashable, Sendable {
    /// Run it here; the reply carries the migration tag.
    case execute
    /// Fetch the key from the source first (priority pull), replay it, then
    /// run the request from scratch against the local hash table.
    case priorityFetchFirst
    /// Start a priority pull of the key and answer STATUS_RETRY now
    /// (rocksteady's extra round trip).
    case retryAfterPriorityFetch
    /// Answer STATUS_RETRY: the tablet is changing hands.
    case retryLater
    /// Answer STATUS_UNKNOWN_TABLET (with the migration tag, so the client
    /// knows where to go).
    case refuse
}

/// What a server's read of one key says, as the client merges it.
public enum LookupAnswer: Hashable, Sendable {
    case object(Version)
    /// Removed; the version orders it against the other server's copy.
    case tombstone(Version)
    /// No such key, and this server would know.
    case absent
    /// This server cannot tell yet: the key's data has not reached it. A
    /// reverse (cancel) run's destination attaches the old copy it still
    /// holds, which stands unless the other server has something newer.
    case notYetMoved(stale: StaleCopy?)

    public var isAuthoritative: Bool {
        if case .notYetMoved = self { return false }
        return true
    }
}

public enum StaleCopy: Hashable, Sendable {
    case object(Version)
    case absent
}

/// Reply of the source to the destination's prepare.
public struct PrepareResult: Hashable, Sendable {
    /// Strictly greater than every version ever assigned in the tablet.
    public var versionBound: Version
    public var layout: HashTableLayout

    public init(versionBound: Version, layout: HashTableLayout) {
        self.versionBound = versionBound
        self.layout = layout
    }
}

/// A reverse run (cancel after Prepare) moves the tablet back to its old
/// owner. It has a migration id of its own, allocated like any other (ids
/// order migrations by age: a client lets a newer one supersede an older). `forwardBound` is the version bound of the forward run: every
/// write made at the forward destination has a version at or above it, so
/// the old owner's entries below it are its old copy.
public struct ReverseRun: Hashable, Sendable {
    public var forward: MigrationID
    public var forwardBound: Version
    /// The forward run's watermarks at the time of the cancel: the reverse
    /// source (the forward destination) holds every key below them. Only
    /// the reverse source needs them.
    public var forwardWatermarks: Watermarks?

    public init(forward: MigrationID, forwardBound: Version, forwardWatermarks: Watermarks? = nil) {
        self.forward = forward
        self.forwardBound = forwardBound
        self.forwardWatermarks = forwardWatermarks
    }

}
