/// Known protocol bugs (most of them from the original research code) that
/// tests switch back on to prove that the simulation and the checker catch
/// them. Production code always runs with `.none`.
public struct ProtocolFaults: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let none: ProtocolFaults = []
    /// Source reports its segment safeVersion as the version bound.
    public static let boundFromSafeVersionOnly = ProtocolFaults(rawValue: 1 << 0)
    /// Destination advances a watermark when a batch arrives, before it is replayed.
    public static let watermarkOnReceipt = ProtocolFaults(rawValue: 1 << 1)
    /// A remove at the destination drops the key's tombstone from the hash table.
    public static let removeDropsTombstone = ProtocolFaults(rawValue: 1 << 2)
    /// Destination answers a read that finds a tombstone as a miss with version 0.
    public static let tombstoneAnsweredAsMiss = ProtocolFaults(rawValue: 1 << 3)
    /// Source does not hand over the tablet's linearizable-RPC completion records.
    public static let completionRecordsNotHandedOver = ProtocolFaults(rawValue: 1 << 4)
    /// Client returns a "migrating" reply from the source on its own.
    public static let sourceReplyReturnedAlone = ProtocolFaults(rawValue: 1 << 5)
    /// Client turns the destination's absent-not-yet-moved into "absent" when
    /// the source no longer answers for the tablet.
    public static let notYetMovedTakenAsAbsent = ProtocolFaults(rawValue: 1 << 6)
    /// Client keeps its view of a migration (and the old owner) after it ended.
    public static let tabletMapNotFlushedAtEnd = ProtocolFaults(rawValue: 1 << 7)
    /// A reverse (cancel) run trusts the old source's stale entries.
    public static let reverseTrustsOldEntries = ProtocolFaults(rawValue: 1 << 8)

    public static let named: [(String, ProtocolFaults)] = [
        ("boundFromSafeVersionOnly", .boundFromSafeVersionOnly),
        ("watermarkOnReceipt", .watermarkOnReceipt),
        ("removeDropsTombstone", .removeDropsTombstone),
        ("tombstoneAnsweredAsMiss", .tombstoneAnsweredAsMiss),
        ("completionRecordsNotHandedOver", .completionRecordsNotHandedOver),
        ("sourceReplyReturnedAlone", .sourceReplyReturnedAlone),
        ("notYetMovedTakenAsAbsent", .notYetMovedTakenAsAbsent),
        ("tabletMapNotFlushedAtEnd", .tabletMapNotFlushedAtEnd),
        ("reverseTrustsOldEntries", .reverseTrustsOldEntries),
    ]

    public var description: String {
        let names = Self.named.filter { contains($0.1) }.map(\.0)
        return names.isEmpty ? "none" : names.joined(separator: "+")
    }
}
