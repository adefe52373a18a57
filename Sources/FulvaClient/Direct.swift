// Requests a protocol client sends to servers it chooses, and their
// replies: the Swift side of fulva.h's fulva_client_operation and
// fulva_client_outcome, shared by programs that load libramcloud
// (FulvaRAMCloud) and by the client shim inside it (FulvaPlugin).
import CFulva
import FulvaCore

/// One request of a protocol client to one server it chose.
public struct DirectRequest: Sendable {
    public enum Kind: Sendable {
        case read(hint: MigrationHint?)
        case write(value: [UInt8])
        case remove
        case increment(delta: Int64)
    }
    public var server: ServerID
    public var tableID: UInt64
    public var key: [UInt8]
    public var kind: Kind
    public var rejectRules: RejectRules?
    /// A read's longest value returned whole.
    public var valueCapacity: Int

    public init(server: ServerID, tableID: UInt64, key: [UInt8], kind: Kind, rejectRules: RejectRules? = nil,
                valueCapacity: Int = DirectCalls.valueCapacity) {
        self.server = server
        self.tableID = tableID
        self.key = key
        self.kind = kind
        self.rejectRules = rejectRules
        self.valueCapacity = valueCapacity
    }
}

/// A server's reply to one `DirectRequest`.
public struct DirectReply: Sendable {
    /// RAMCloud's status (0: STATUS_OK).
    public var status: Int32
    /// A read's answer (nil for other requests or a status other than OK).
    public var answer: LookupAnswer?
    public var version: UInt64
    public var value: [UInt8]
    public var newValue: Int64
    /// The migration tag, when the reply carries one.
    public var tag: MigrationTag?
    /// Bytes of the tag on the wire.
    public var tagBytes: Int

    /// No reply before the deadline, or the transport failed.
    public var unanswered: Bool { status == Int32(FULVA_ERROR_UNAVAILABLE) }
}


/// A failed fulva.h call: its status and message.
public struct DirectCallError: Error, CustomStringConvertible {
    public let status: Int32
    public let message: String
    public init(status: Int32, message: String) {
        self.status = status
        self.message = message
    }
    public var description: String { "status \(status) (\(message))" }
}

/// What a protocol client needs from the connection under it.
public protocol DirectTransport: AnyObject {
    /// Sends the requests at once, waits at most `timeoutMicros`, retries nothing.
    func execute(_ requests: [DirectRequest], timeoutMicros: UInt32) throws -> [DirectReply]
    /// RAMCloud's hash of a primary key.
    func keyHash(table: UInt64, key: [UInt8]) throws -> KeyHash
    /// The key's owner by the tablet map: the cached map, or the
    /// coordinator's when `fresh`.
    func owner(table: UInt64, key: [UInt8], keyHash: KeyHash, fresh: Bool) throws -> ServerID
}

/// The signature of fulva_client_execute once the connection is bound.
public typealias ExecuteCall = (UnsafePointer<fulva_client_operation>?, UnsafeMutablePointer<fulva_client_outcome>?,
                                Int, UInt32, UnsafeMutablePointer<CChar>?, Int) -> Int32

public enum DirectCalls {
    /// The most bytes of a value a protocol read copies out, unless the
    /// request says otherwise.
    public static let valueCapacity = 4096

    /// Lays the requests out as fulva_client_operations, makes the call,
    /// and reads the outcomes back. A tag that does not decode is an error.
    public static func execute(_ requests: [DirectRequest], timeoutMicros: UInt32,
                               _ call: ExecuteCall) throws(DirectCallError) -> [DirectReply] {
        var outcomes = [fulva_client_outcome](repeating: fulva_client_outcome(), count: requests.count)
        // One buffer; each read's value at its own offset.
        var offsets: [Int] = []
        var total = 0
        for r in requests {
            offsets.append(total)
            if case .read = r.kind { total += r.valueCapacity }
        }
        let valueBuffers = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, total), alignment: 8)
        defer { valueBuffers.deallocate() }
        var status: Int32 = 0
        var error = [CChar](repeating: 0, count: 512)
        // Every pointer the C call sees stays valid for its whole duration.
        let keys = requests.map { $0.key }
        let values: [[UInt8]] = requests.map { if case .write(let v) = $0.kind { v } else { [] } }
        var rules = requests.map { r -> fulva_reject_rules in
            guard let rules = r.rejectRules else { return fulva_reject_rules() }
            return fulva_reject_rules(givenVersion: rules.givenVersion, doesntExist: rules.doesntExist ? 1 : 0,
                                      exists: rules.exists ? 1 : 0, versionLeGiven: rules.versionLeGiven ? 1 : 0,
                                      versionNeGiven: rules.versionNeGiven ? 1 : 0, reserved: 0)
        }
        withPinned(keys) { keyPointers in
            withPinned(values) { valuePointers in
                rules.withUnsafeMutableBufferPointer { rulesBuffer in
                    var operations: [fulva_client_operation] = []
                    for (i, r) in requests.enumerated() {
                        var op = fulva_client_operation()
                        op.server = r.server.rawValue
                        op.tableId = r.tableID
                        op.key = keyPointers[i]
                        op.keyLength = UInt16(r.key.count)
                        op.rejectRules = r.rejectRules == nil ? nil : UnsafePointer(rulesBuffer.baseAddress! + i)
                        switch r.kind {
                        case .read(let hint):
                            op.kind = UInt32(FULVA_OPERATION_READ)
                            op.hintMigration = hint?.migration.rawValue ?? 0
                            op.hintEpoch = hint?.epoch ?? 0
                            op.valueBuffer = valueBuffers.baseAddress! + offsets[i]
                            op.valueCapacity = UInt32(r.valueCapacity)
                        case .write(let v):
                            op.kind = UInt32(FULVA_OPERATION_WRITE)
                            op.value = valuePointers[i]
                            op.valueLength = UInt32(v.count)
                        case .remove:
                            op.kind = UInt32(FULVA_OPERATION_REMOVE)
                        case .increment(let delta):
                            op.kind = UInt32(FULVA_OPERATION_INCREMENT)
                            op.delta = delta
                        }
                        operations.append(op)
                    }
                    status = operations.withUnsafeBufferPointer { ops in
                        outcomes.withUnsafeMutableBufferPointer { out in
                            error.withUnsafeMutableBufferPointer { e in
                                call(ops.baseAddress, out.baseAddress, requests.count, timeoutMicros, e.baseAddress, e.count)
                            }
                        }
                    }
                }
            }
        }
        guard status == 0 else {
            throw DirectCallError(status: status, message: error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        var replies: [DirectReply] = []
        for (i, o) in outcomes.enumerated() {
            let isRead = { if case .read = requests[i].kind { true } else { false } }()
            let start = offsets[i]
            let value = isRead ? Array(valueBuffers[start..<(start + min(Int(o.valueLength), requests[i].valueCapacity))])
                               : []
            replies.append(try reply(o, isRead: isRead, value: value))
        }
        return replies
    }

    /// One outcome as a DirectReply; `value` holds the read's bytes.
    public static func reply(_ o: fulva_client_outcome, isRead: Bool, value: [UInt8]) throws(DirectCallError) -> DirectReply {
        var reply = DirectReply(status: o.status, answer: nil, version: o.version, value: [], newValue: o.newValue,
                                tag: nil, tagBytes: Int(o.tagLength))
        if o.tagLength > 0 {
            let bytes = withUnsafeBytes(of: o.tag) { Array($0.prefix(Int(o.tagLength))) }
            do {
                reply.tag = try MigrationTag(decoding: bytes)
            } catch {
                throw DirectCallError(status: Int32(FULVA_ERROR_INTERNAL), message: "a reply's migration tag: \(error)")
            }
        }
        if o.status == 0, isRead {
            switch Int(o.answer) {
            case Int(FULVA_ANSWER_OBJECT):
                reply.answer = .object(o.version)
                reply.value = value
            case Int(FULVA_ANSWER_TOMBSTONE): reply.answer = .tombstone(o.version)
            case Int(FULVA_ANSWER_ABSENT): reply.answer = .absent
            case Int(FULVA_ANSWER_NOT_YET_MOVED_OVER_OBJECT):
                // A reverse run's old copy: used only if it wins the merge.
                reply.answer = .notYetMoved(stale: .object(o.version))
                reply.value = value
            case Int(FULVA_ANSWER_NOT_YET_MOVED_OVER_ABSENT): reply.answer = .notYetMoved(stale: .absent)
            default: reply.answer = .notYetMoved(stale: nil)
            }
        }
        return reply
    }
}

/// Calls `body` with stable pointers to each array's bytes.
func withPinned<R>(_ arrays: [[UInt8]], _ body: ([UnsafeRawPointer?]) -> R) -> R {
    var pointers: [UnsafeRawPointer?] = []
    func nest(_ index: Int) -> R {
        if index == arrays.count { return body(pointers) }
        return arrays[index].withUnsafeBytes { bytes in
            pointers.append(bytes.baseAddress)
            return nest(index + 1)
        }
    }
    return nest(0)
}
