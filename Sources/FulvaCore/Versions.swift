// Version rules: which copy of a key is the latest, and which version a new
// write gets. Every server and the client decide with these functions only.

/// What a server's hash table holds for one key, as far as the protocol
/// cares: the payload stays with the host.
public enum EntryVersion: Hashable, Sendable {
    case object(Version)
    /// A removed key. The version is the removed object's version (RAMCloud's
    /// ObjectTombstone), or the version a remove was given at the destination.
    case tombstone(Version)

    public var version: Version {
        switch self {
        case .object(let v), .tombstone(let v): return v
        }
    }

    public var isTombstone: Bool {
        if case .tombstone = self { return true }
        return false
    }
}

public enum ReplayRule {
    /// Whether `incoming` replaces `existing` during replay: the higher
    /// version wins, and a tombstone with version v beats every object with a
    /// version ≤ v. Equal copies are not re-installed.
    public static func replaces(_ incoming: EntryVersion, over existing: EntryVersion?) -> Bool {
        guard let existing else { return true }
        switch (incoming, existing) {
        case (.object(let i), .object(let e)):
            return i > e
        case (.tombstone(let i), .object(let e)):
            return i >= e
        case (.object(let i), .tombstone(let e)):
            return i > e
        case (.tombstone(let i), .tombstone(let e)):
            return i > e
        }
    }

    /// The later of two copies of one key, by the same rule. Ties go to `preferred`.
    public static func latest(_ preferred: EntryVersion, _ other: EntryVersion) -> EntryVersion {
        replaces(other, over: preferred) && other.version != preferred.version ? other : preferred
    }
}

public enum VersionRule {
    /// The version a write gets on a server. Stock RAMCloud uses
    /// `existing + 1`, or the segment safeVersion for a key it does not hold.
    /// While the tablet migrates towards this server, `floor` is above every
    /// version the other server ever assigned in the tablet, and every write
    /// gets at least `floor`: a cancelled migration then tells the writes
    /// made here apart from the copies it pulled (DESIGN.md §3, Cancel).
    public static func nextVersion(existing: EntryVersion?, safeVersion: Version,
                                   floor: Version?) -> Version {
        let stock = existing.map { $0.version + 1 } ?? safeVersion
        return max(stock, floor ?? 0)
    }

    /// The version bound a source reports at the end of Prepare: strictly
    /// greater than every version ever assigned in the tablet. RAMCloud's
    /// segment safeVersion alone is not enough: an overwrite assigns
    /// `existing + 1` and does not raise it.
    public static func versionBound(safeVersion: Version, highestVersionInTablet: Version,
                                    faults: ProtocolFaults = .none) -> Version {
        if faults.contains(.boundFromSafeVersionOnly) { return safeVersion }
        return max(safeVersion, highestVersionInTablet + 1)
    }
}

/// RAMCloud's reject rules (WireFormat::RejectRules), evaluated exactly as
/// ObjectManager::rejectOperation does.
public struct RejectRules: Hashable, Sendable {
    public var givenVersion: Version
    public var doesntExist: Bool
    public var exists: Bool
    public var versionLeGiven: Bool
    public var versionNeGiven: Bool

    public init(givenVersion: Version = 0, doesntExist: Bool = false, exists: Bool = false,
                versionLeGiven: Bool = false, versionNeGiven: Bool = false) {
        self.givenVersion = givenVersion
        self.doesntExist = doesntExist
        self.exists = exists
        self.versionLeGiven = versionLeGiven
        self.versionNeGiven = versionNeGiven
    }

    public enum Rejection: Hashable, Sendable {
        case objectDoesntExist
        case objectExists
        case wrongVersion
    }

    /// `current` is the live object's version, or nil when the key is absent
    /// (a tombstone counts as absent).
    public func evaluate(currentVersion current: Version?) -> Rejection? {
        guard let version = current else {
            return doesntExist ? .objectDoesntExist : nil
        }
        if exists { return .objectExists }
        if versionLeGiven && version <= givenVersion { return .wrongVersion }
        if versionNeGiven && version != givenVersion { return .wrongVersion }
        return nil
    }
}
