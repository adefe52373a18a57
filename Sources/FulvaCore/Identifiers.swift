// Names shared by every part of the protocol. One concept, one name: a tablet
// is a table plus an inclusive key-hash range, exactly as RAMCloud's
// TabletManager keeps it.

/// RAMCloud's 64-bit key hash (Key::getHash: MurmurHash3 of the key, seeded
/// with the table id).
public typealias KeyHash = UInt64

/// RAMCloud's object version. 0 means "does not exist" (VERSION_NONEXISTENT).
public typealias Version = UInt64

/// RAMCloud's ServerId, as its 64-bit wire form.
public struct ServerID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: ServerID, b: ServerID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "server \(rawValue)" }
}

/// Identifies one migration for its whole life, in ZooKeeper and on the wire.
public struct MigrationID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: MigrationID, b: MigrationID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "migration \(rawValue)" }
}

/// An inclusive range of key hashes, as RAMCloud tablets are defined.
public struct KeyHashRange: Hashable, Sendable, CustomStringConvertible {
    public let start: KeyHash
    public let end: KeyHash

    /// The range [start, end], both inclusive.
    public init(start: KeyHash, end: KeyHash) throws(FulvaError) {
        guard start <= end else { throw .invertedKeyHashRange(start: start, end: end) }
        self.start = start
        self.end = end
    }

    /// A half-open range; an empty one is an error (a tablet covers at least one hash).
    public init(_ halfOpen: Range<KeyHash>) throws(FulvaError) {
        guard !halfOpen.isEmpty else { throw .emptyKeyHashRange }
        self.start = halfOpen.lowerBound
        self.end = halfOpen.upperBound - 1
    }

    /// Every key hash.
    public static let all = try! KeyHashRange(start: 0, end: .max)

    public func contains(_ hash: KeyHash) -> Bool { hash >= start && hash <= end }

    public func overlaps(_ other: KeyHashRange) -> Bool {
        start <= other.end && other.start <= end
    }

    public var description: String { "[0x\(String(start, radix: 16)), 0x\(String(end, radix: 16))]" }
}

/// A table, or part of one: the unit that migrates.
public struct Tablet: Hashable, Sendable, CustomStringConvertible {
    public var tableID: UInt64
    public var range: KeyHashRange

    public init(tableID: UInt64, range: KeyHashRange = .all) {
        self.tableID = tableID
        self.range = range
    }

    public func contains(tableID: UInt64, keyHash: KeyHash) -> Bool {
        tableID == self.tableID && range.contains(keyHash)
    }

    public func overlaps(_ other: Tablet) -> Bool {
        tableID == other.tableID && range.overlaps(other.range)
    }

    public var description: String { "table \(tableID) \(range)" }
}

/// How a tablet is moved. `fulva` is the product; the other two are the
/// baselines it is measured against.
public enum Strategy: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Writes at the destination at once, dual reads for keys not yet moved.
    case fulva
    /// Source locked; the destination serves everything and answers a miss
    /// on a key not yet moved with a priority pull and a retry.
    case rocksteady
    /// RAMCloud's own migrateTablet: the source copies while serving, then
    /// freezes the tablet for a final transfer of ownership.
    case source

    public init(parsing text: String) throws(FulvaError) {
        guard let strategy = Strategy(rawValue: text.lowercased()) else {
            throw .unknownStrategy(text)
        }
        self = strategy
    }

    public var description: String { rawValue }
}

/// Every error the protocol core reports. Nothing in FulvaCore traps on input
/// from the outside world.
public enum FulvaError: Error, Hashable, Sendable, CustomStringConvertible {
    case invertedKeyHashRange(start: KeyHash, end: KeyHash)
    case emptyKeyHashRange
    case unknownStrategy(String)
    case sameSourceAndDestination(ServerID)
    case tabletBusy(Tablet, MigrationID)
    case tooManyMigrations(running: [MigrationID], limit: Int)
    case invalidLayout(String)
    case illegalTransition(MigrationID, from: MigrationPhase, to: MigrationPhase)
    case staleRecord(MigrationID, expectedRevision: UInt64, actualRevision: UInt64)
    case malformedTag(String)
    case cancelTooLate(MigrationID, MigrationPhase)
    /// A request that names things inconsistently (wrong server, duplicate id, ...).
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .invertedKeyHashRange(let s, let e):
            return "key-hash range is inverted: start 0x\(String(s, radix: 16)) > end 0x\(String(e, radix: 16))"
        case .emptyKeyHashRange:
            return "key-hash range is empty"
        case .unknownStrategy(let s):
            return "unknown strategy '\(s)' (expected one of: \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .sameSourceAndDestination(let s):
            return "source and destination are the same (\(s))"
        case .tabletBusy(let t, let m):
            return "\(t) is already being moved by \(m)"
        case .tooManyMigrations(let running, let limit):
            return "\(running.count) migrations are running (\(running.map(\.description).joined(separator: ", "))), "
                + "the limit is \(limit): wait for one to end, or raise --max-active"
        case .invalidLayout(let why):
            return "invalid hash-table layout: \(why)"
        case .invalidRequest(let why):
            return "invalid migration request: \(why)"
        case .illegalTransition(let m, let from, let to):
            return "\(m) cannot go from \(from) to \(to)"
        case .staleRecord(let m, let expected, let actual):
            return "\(m) changed underneath (revision \(actual), expected \(expected))"
        case .malformedTag(let why):
            return "malformed migration tag: \(why)"
        case .cancelTooLate(let m, let phase):
            return "\(m) can no longer be cancelled in phase \(phase)"
        }
    }
}
