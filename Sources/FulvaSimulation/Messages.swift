import FulvaCore

/// An object or a tombstone as a server stores it.
struct StoredEntry: Hashable {
    /// nil for a tombstone.
    var value: Int64?
    var version: Version

    var entryVersion: EntryVersion { value == nil ? .tombstone(version) : .object(version) }
}

/// A client's change to one key.
enum Mutation: Hashable {
    case write(value: Int64, rules: RejectRules?)
    case remove(rules: RejectRules?)
    case increment(delta: Int64, rules: RejectRules?)

    var requestKind: RequestKind {
        switch self {
        case .write(_, let rules): return rules == nil ? .blindWrite : .readModifyWrite
        case .remove(let rules): return rules == nil ? .blindRemove : .readModifyWrite
        case .increment: return .readModifyWrite
        }
    }
}

/// The outcome of a mutation, as RAMCloud reports it (and as RIFL records keep it).
enum MutationOutcome: Hashable {
    case written(version: Version)
    case removed(version: Version?)
    case incremented(value: Int64, version: Version)
    case rejected(RejectRules.Rejection)
}

enum ReadStatus: Hashable {
    case answer(LookupAnswer, value: Int64?)
    case unknownTablet
    case retry
}

enum MutationStatus: Hashable {
    case done(MutationOutcome)
    case unknownTablet
    case retry
}

/// A linearizable RPC's completion record (RAMCloud's RIFL).
struct CompletionRecord: Hashable {
    var rpcID: UInt64
    var tableID: UInt64
    var keyHash: KeyHash
    var outcome: MutationOutcome
}

/// What a priority pull found at the source.
enum PriorityAnswer: Hashable {
    case entry(StoredEntry)
    case absent
    /// A reverse run's source never had the key: the old owner's copy stands.
    case noInformation
}

/// Everything that crosses the simulated network.
enum Message {
    // Clients and servers.
    case read(request: UInt64, key: String, hint: MigrationHint?)
    case readReply(request: UInt64, ReadStatus, tag: MigrationTag?, priorityFetched: Bool)
    case mutate(request: UInt64, rpcID: UInt64, key: String, Mutation, hint: MigrationHint?)
    case mutateReply(request: UInt64, MutationStatus, tag: MigrationTag?, priorityFetched: Bool)
    // Clients and the coordinator.
    case getTabletMap(request: UInt64)
    case tabletMap(request: UInt64, [Tablet: ServerID])
    // Coordinator to servers.
    case startMigration(MigrationID, Tablet, source: ServerID, Strategy, reverse: ReverseRun?)
    case release(MigrationID)
    case abandon(MigrationID)
    case acknowledged(MigrationID, what: String)
    // Destination and source.
    case prepare(MigrationID, Tablet, destination: ServerID, Strategy, partitions: Int, reverse: ReverseRun?)
    case prepared(MigrationID, PrepareResult, [CompletionRecord])
    case pull(MigrationID, PullBatch, maxEntries: Int)
    case pulled(MigrationID, PullBatch, [String: StoredEntry], resumeAt: UInt64?)
    case priorityPull(MigrationID, key: String)
    case priorityPulled(MigrationID, key: String, PriorityAnswer)
    case drop(MigrationID)
    // Source-driven copy.
    case push(MigrationID, PullBatch?, [String: StoredEntry], [CompletionRecord], versionBound: Version)
    case pushed(MigrationID, PullBatch?)
    // Servers and the coordinator.
    case takeOwnership(MigrationID, versionBound: Version)
    case ownership(MigrationID, granted: Bool)
    case finish(MigrationID)
    case finished(MigrationID, granted: Bool)
}

/// Something that receives messages.
protocol Node: AnyObject {
    var id: ServerID { get }
    func receive(_ message: Message, from sender: ServerID)
}
