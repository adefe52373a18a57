// The recorded operation history: one format for the simulation, the
// integration tests and the benchmarks. Every client operation on one key is
// one `RecordedOperation`; a multi-key operation (multi-read, multi-write) is
// recorded as one operation per key sharing a `group`.
//
// Values are 64-bit integers so that increments and blind writes act on the
// same objects. A workload gives every blind write a value no other write
// uses, which makes stale reads and lost updates visible to the checker.

/// RAMCloud's reject rules, as a client states them (WireFormat::RejectRules).
public struct RecordedRejectRules: Hashable, Sendable, Codable {
    public var givenVersion: UInt64
    public var doesntExist: Bool
    public var exists: Bool
    public var versionLeGiven: Bool
    public var versionNeGiven: Bool

    public init(givenVersion: UInt64 = 0, doesntExist: Bool = false, exists: Bool = false,
                versionLeGiven: Bool = false, versionNeGiven: Bool = false) {
        self.givenVersion = givenVersion
        self.doesntExist = doesntExist
        self.exists = exists
        self.versionLeGiven = versionLeGiven
        self.versionNeGiven = versionNeGiven
    }
}

/// Why a server refused an operation because of its reject rules.
public enum RecordedRejection: String, Hashable, Sendable, Codable {
    case objectDoesntExist
    case objectExists
    case wrongVersion
}

/// What the client asked for, on one key.
public enum RecordedInput: Hashable, Sendable, Codable {
    case read
    /// A blind write when `rejectRules` is nil, a conditional write otherwise.
    case write(value: Int64, rejectRules: RecordedRejectRules?)
    case remove(rejectRules: RecordedRejectRules?)
    /// RAMCloud's incrementInt64: an absent object counts as 0.
    case increment(delta: Int64, rejectRules: RecordedRejectRules?)
}

/// What the client was told. A `nil` output in a `RecordedOperation` means the
/// client never learned the outcome (the operation failed or timed out): it
/// may or may not have taken effect.
public enum RecordedOutput: Hashable, Sendable, Codable {
    case found(value: Int64, version: UInt64)
    case absent
    case written(version: UInt64)
    /// `version` is the removed object's version, or nil when the client was
    /// not told (RAMCloud answers 0 for a key that did not exist).
    case removed(version: UInt64?)
    case incremented(value: Int64, version: UInt64)
    case rejected(RecordedRejection)
}

/// The kind of operation as the client issued it, before splitting per key.
public enum OperationKind: String, Hashable, Sendable, Codable, CaseIterable {
    case read
    case write
    case remove
    case conditionalRemove
    case conditionalWrite
    case increment
    case multiRead
    case multiWrite
}

/// How an operation travelled: the figures a migration report is made of.
public struct OperationRouting: Hashable, Sendable, Codable {
    /// Requests the client sent for this operation (a dual read counts 2 if
    /// both were needed in sequence, 1 when both went out at once).
    public var roundTrips: Int
    /// The read went to the source and the destination at once.
    public var dualRead: Bool
    /// Priority fetches the destination made for this operation.
    public var priorityFetches: Int
    /// Bytes of migration progress carried by the replies to this operation.
    public var progressBytes: Int
    /// Replies this operation received.
    public var replies: Int

    public init(roundTrips: Int = 1, dualRead: Bool = false, priorityFetches: Int = 0,
                progressBytes: Int = 0, replies: Int = 1) {
        self.roundTrips = roundTrips
        self.dualRead = dualRead
        self.priorityFetches = priorityFetches
        self.progressBytes = progressBytes
        self.replies = replies
    }
}

/// One operation on one key, with its real-time interval.
public struct RecordedOperation: Hashable, Sendable, Codable {
    public var id: Int
    public var client: Int
    /// Multi-key operations share a group; single-key ones use their own id.
    public var group: Int
    public var kind: OperationKind
    /// RAMCloud's linearizable-RPC id (client lease, sequence), if any: the
    /// operation took effect at most once whatever the retries.
    public var rpcID: UInt64?
    public var key: String
    /// True when the key lies in the tablet being migrated.
    public var onMigratingTablet: Bool
    public var input: RecordedInput
    public var output: RecordedOutput?
    /// Invocation and completion, in nanoseconds on one clock.
    public var invokedAt: Int64
    public var completedAt: Int64
    public var routing: OperationRouting

    public init(id: Int, client: Int, group: Int? = nil, kind: OperationKind, rpcID: UInt64? = nil,
                key: String, onMigratingTablet: Bool = true, input: RecordedInput,
                output: RecordedOutput?, invokedAt: Int64, completedAt: Int64,
                routing: OperationRouting = OperationRouting()) {
        self.id = id
        self.client = client
        self.group = group ?? id
        self.kind = kind
        self.rpcID = rpcID
        self.key = key
        self.onMigratingTablet = onMigratingTablet
        self.input = input
        self.output = output
        self.invokedAt = invokedAt
        self.completedAt = completedAt
        self.routing = routing
    }

    /// The client never learned the outcome.
    public var failed: Bool { output == nil }
}

/// Points in time of a migration, for splitting figures into before, during
/// and after.
public struct MigrationTimeline: Hashable, Sendable, Codable {
    public var startedAt: Int64?
    public var endedAt: Int64?
    public init(startedAt: Int64? = nil, endedAt: Int64? = nil) {
        self.startedAt = startedAt
        self.endedAt = endedAt
    }
}

/// A whole recorded run.
public struct History: Hashable, Sendable, Codable {
    public var operations: [RecordedOperation]
    /// Initial state of keys before the first operation (absent when missing).
    public var initialValues: [String: RecordedInitialObject]
    public var timeline: MigrationTimeline

    public init(operations: [RecordedOperation] = [],
                initialValues: [String: RecordedInitialObject] = [:],
                timeline: MigrationTimeline = MigrationTimeline()) {
        self.operations = operations
        self.initialValues = initialValues
        self.timeline = timeline
    }
}

public struct RecordedInitialObject: Hashable, Sendable, Codable {
    public var value: Int64
    public var version: UInt64
    public init(value: Int64, version: UInt64) {
        self.value = value
        self.version = version
    }
}
