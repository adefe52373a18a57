/// The role of the server that answers about a migrating tablet.
public enum MigrationRole: UInt8, Hashable, Sendable {
    case source = 1
    case destination = 2
    /// The migration is over; the answering server owns the tablet normally.
    /// Sent only to a client that named the migration in its request.
    case ended = 3
}

/// Who moves what, sent once per client (with the first progress report).
public struct MigrationIdentity: Hashable, Sendable {
    public var source: ServerID
    public var destination: ServerID
    public var strategy: Strategy
    public var tablet: Tablet
    public var layout: HashTableLayout

    public init(source: ServerID, destination: ServerID, strategy: Strategy, tablet: Tablet,
                layout: HashTableLayout) {
        self.source = source
        self.destination = destination
        self.strategy = strategy
        self.tablet = tablet
        self.layout = layout
    }
}

/// What a client puts in a request about a tablet it knows to be migrating:
/// the migration and the last progress epoch it has seen. 12 bytes.
public struct MigrationHint: Hashable, Sendable {
    public var migration: MigrationID
    public var epoch: UInt32
    public init(migration: MigrationID, epoch: UInt32) {
        self.migration = migration
        self.epoch = epoch
    }
}

/// What a reply about a migrating tablet carries: the migration, the
/// replier's role and the watermarks that moved since the client's epoch.
/// Replies about other tablets carry no tag at all.
public struct MigrationTag: Hashable, Sendable {
    public var migration: MigrationID
    public var role: MigrationRole
    public var epoch: UInt32
    public var identity: MigrationIdentity?
    public var watermarks: [WatermarkUpdate]

    public struct WatermarkUpdate: Hashable, Sendable {
        public var partition: UInt16
        public var bucket: UInt32
        public init(partition: UInt16, bucket: UInt32) {
            self.partition = partition
            self.bucket = bucket
        }
    }

    public init(migration: MigrationID, role: MigrationRole, epoch: UInt32 = 0,
                identity: MigrationIdentity? = nil, watermarks: [WatermarkUpdate] = []) {
        self.migration = migration
        self.role = role
        self.epoch = epoch
        self.identity = identity
        self.watermarks = watermarks
    }

    // Wire format, little-endian (the C++ side writes the same bytes):
    //   u8 role | u64 migration | u32 epoch | u8 flags (bit 0: identity)
    //   [identity: u64 source | u64 destination | u8 strategy | u64 tableId |
    //    u64 startHash | u64 endHash | u32 log2(bucketCount) | u16 partitions]
    //   u16 count | count × (u16 partition | u32 bucket)
    static let strategyCodes: [Strategy: UInt8] = [.fulva: 1, .rocksteady: 2, .source: 3]

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encodedSize)
        out.append(role.rawValue)
        out.appendLE(migration.rawValue)
        out.appendLE(epoch)
        out.append(identity == nil ? 0 : 1)
        if let id = identity {
            out.appendLE(id.source.rawValue)
            out.appendLE(id.destination.rawValue)
            out.append(Self.strategyCodes[id.strategy]!)
            out.appendLE(id.tablet.tableID)
            out.appendLE(id.tablet.range.start)
            out.appendLE(id.tablet.range.end)
            out.appendLE(UInt32(id.layout.bucketCount.trailingZeroBitCount))
            out.appendLE(UInt16(id.layout.partitionCount))
        }
        out.appendLE(UInt16(watermarks.count))
        for w in watermarks {
            out.appendLE(w.partition)
            out.appendLE(w.bucket)
        }
        return out
    }

    public var encodedSize: Int {
        1 + 8 + 4 + 1 + (identity == nil ? 0 : 8 + 8 + 1 + 8 + 8 + 8 + 4 + 2) + 2 + 6 * watermarks.count
    }

    public init(decoding bytes: [UInt8]) throws(FulvaError) {
        var r = ByteReader(bytes: bytes)
        guard let role = MigrationRole(rawValue: try r.u8()) else { throw .malformedTag("unknown role") }
        self.role = role
        self.migration = MigrationID(try r.u64())
        self.epoch = try r.u32()
        let flags = try r.u8()
        if flags & 1 != 0 {
            let source = ServerID(try r.u64()), destination = ServerID(try r.u64())
            let code = try r.u8()
            guard let strategy = Self.strategyCodes.first(where: { $0.value == code })?.key else {
                throw .malformedTag("unknown strategy code \(code)")
            }
            let tableID = try r.u64(), start = try r.u64(), end = try r.u64()
            let log2Buckets = try r.u32()
            let partitions = try r.u16()
            guard log2Buckets < 32 else { throw .malformedTag("bucket count 2^\(log2Buckets)") }
            let range = try KeyHashRange(start: start, end: end)
            let layout = try HashTableLayout(bucketCount: 1 << UInt64(log2Buckets),
                                             partitionCount: Int(partitions))
            self.identity = MigrationIdentity(source: source, destination: destination, strategy: strategy,
                                              tablet: Tablet(tableID: tableID, range: range), layout: layout)
        } else {
            self.identity = nil
        }
        let count = Int(try r.u16())
        var updates: [WatermarkUpdate] = []
        updates.reserveCapacity(count)
        for _ in 0..<count {
            updates.append(WatermarkUpdate(partition: try r.u16(), bucket: try r.u32()))
        }
        self.watermarks = updates
        guard r.atEnd else { throw .malformedTag("\(bytes.count - r.offset) trailing bytes") }
    }
}

extension MigrationHint {
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE(migration.rawValue)
        out.appendLE(epoch)
        return out
    }

    public static let encodedSize = 12

    public init(decoding bytes: [UInt8]) throws(FulvaError) {
        var r = ByteReader(bytes: bytes)
        self.migration = MigrationID(try r.u64())
        self.epoch = try r.u32()
        guard r.atEnd else { throw .malformedTag("hint has trailing bytes") }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    var atEnd: Bool { offset == bytes.count }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws(FulvaError) -> T {
        let size = MemoryLayout<T>.size
        guard offset + size <= bytes.count else { throw .malformedTag("truncated at byte \(offset)") }
        var value: T = 0
        for i in 0..<size { value |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    mutating func u8() throws(FulvaError) -> UInt8 { try read(UInt8.self) }
    mutating func u16() throws(FulvaError) -> UInt16 { try read(UInt16.self) }
    mutating func u32() throws(FulvaError) -> UInt32 { try read(UInt32.self) }
    mutating func u64() throws(FulvaError) -> UInt64 { try read(UInt64.self) }
}
