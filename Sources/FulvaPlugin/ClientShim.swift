// The client shim's exports (fulva.h, fulva_shim_*): libramcloud hands
// operations on migrating tablets to them. The rules are FulvaClient's
// ProtocolClient (FulvaCore's client rules); this file converts between C
// structs and Swift values and never lets an error cross as anything but a
// status.
import CFulva
import FulvaClient
import FulvaCore

/// The libramcloud connection the shim runs in, through its host operations.
final class HostConnection: DirectTransport {
    let ops: fulva_shim_host_ops

    init(_ ops: fulva_shim_host_ops) { self.ops = ops }

    func execute(_ requests: [DirectRequest], timeoutMicros: UInt32) throws -> [DirectReply] {
        try DirectCalls.execute(requests, timeoutMicros: timeoutMicros) { operations, outcomes, count, timeout, error, length in
            ops.execute(ops.context, operations, outcomes, count, timeout, error, length)
        }
    }

    func keyHash(table: UInt64, key: [UInt8]) throws -> KeyHash {
        key.withUnsafeBytes { ops.key_hash(table, $0.baseAddress, UInt16($0.count)) }
    }

    func owner(table: UInt64, key: [UInt8], keyHash: KeyHash, fresh: Bool) throws -> ServerID {
        var server: UInt64 = 0
        let status = key.withUnsafeBytes {
            ops.tablet_owner(ops.context, table, $0.baseAddress, UInt16($0.count), fresh ? 1 : 0, &server)
        }
        guard status == FULVA_OK else { throw DirectCallError(status: status, message: "no owner for the key") }
        return ServerID(server)
    }
}

/// One connection's shim.
final class ClientShim {
    let client: ProtocolClient
    var counters = fulva_shim_counters()

    init(_ ops: fulva_shim_host_ops) {
        // RAMCloud's largest object: a read through the shim returns any
        // value whole.
        client = ProtocolClient(connection: HostConnection(ops), deadlineMicros: 10_000_000, valueCapacity: 1 << 20)
    }
}

@_cdecl("fulva_shim_abi_version")
public func fulva_shim_abi_version() -> UInt32 { FULVA_ABI_VERSION }

@_cdecl("fulva_shim_start")
public func fulva_shim_start(_ host: UnsafePointer<fulva_shim_host_ops>?,
                             _ shim: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    guard let host, let shim else { return Int32(FULVA_ERROR_INVALID_ARGUMENT) }
    guard host.pointee.structSize == MemoryLayout<fulva_shim_host_ops>.size,
          host.pointee.abiVersion == FULVA_ABI_VERSION else { return Int32(FULVA_ERROR_ABI_MISMATCH) }
    shim.pointee = Unmanaged.passRetained(ClientShim(host.pointee)).toOpaque()
    return Int32(FULVA_OK)
}

private func shimOf(_ pointer: UnsafeMutableRawPointer?) -> ClientShim? {
    pointer.map { Unmanaged<ClientShim>.fromOpaque($0).takeUnretainedValue() }
}

@_cdecl("fulva_shim_learn")
public func fulva_shim_learn(_ pointer: UnsafeMutableRawPointer?, _ tag: UnsafePointer<UInt8>?,
                             _ length: UInt32) -> Int32 {
    guard let shim = shimOf(pointer), let tag else { return 0 }
    guard let decoded = try? MigrationTag(decoding: Array(UnsafeBufferPointer(start: tag, count: Int(length))))
    else { return 1 }   // a tag that does not decode: do not trust the reply
    shim.counters.tagBytes += UInt64(length)
    let known = shim.client.migrations.migrations[decoded.migration] != nil
    let usable = shim.client.learn(decoded)
    if !known && shim.client.migrations.migrations[decoded.migration] != nil { shim.counters.migrationsLearned += 1 }
    return usable ? 0 : 1
}

@_cdecl("fulva_shim_route")
public func fulva_shim_route(_ pointer: UnsafeMutableRawPointer?, _ tableID: UInt64, _ keyHash: UInt64,
                             _ server: UnsafeMutablePointer<UInt64>?,
                             _ migration: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guard let shim = shimOf(pointer), let (id, destination) = shim.client.destination(table: tableID, keyHash: keyHash)
    else { return 0 }
    server?.pointee = destination.rawValue
    migration?.pointee = id.rawValue
    shim.counters.routed += 1
    return 1
}

@_cdecl("fulva_shim_execute")
public func fulva_shim_execute(_ pointer: UnsafeMutableRawPointer?, _ operation: UnsafePointer<fulva_client_operation>?,
                               _ outcome: UnsafeMutablePointer<fulva_client_outcome>?, _ timeoutMicros: UInt32) -> Int32 {
    guard let shim = shimOf(pointer), let op = operation?.pointee, let outcome, let keyPointer = op.key else {
        return Int32(FULVA_ERROR_INVALID_ARGUMENT)
    }
    let key = Array(UnsafeRawBufferPointer(start: keyPointer, count: Int(op.keyLength)))
    let rules = op.rejectRules.map {
        RejectRules(givenVersion: $0.pointee.givenVersion, doesntExist: $0.pointee.doesntExist != 0,
                    exists: $0.pointee.exists != 0, versionLeGiven: $0.pointee.versionLeGiven != 0,
                    versionNeGiven: $0.pointee.versionNeGiven != 0)
    }
    let report: ProtocolClient.Report
    switch Int(op.kind) {
    case Int(FULVA_OPERATION_READ):
        shim.counters.reads += 1
        report = shim.client.read(table: op.tableId, key: key, rejectRules: rules)
        if report.dualRead { shim.counters.dualReads += 1 }
    case Int(FULVA_OPERATION_WRITE):
        let value = op.value.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(op.valueLength))) } ?? []
        report = shim.client.write(table: op.tableId, key: key, value: value, rejectRules: rules)
    case Int(FULVA_OPERATION_REMOVE):
        report = shim.client.remove(table: op.tableId, key: key, rejectRules: rules)
    case Int(FULVA_OPERATION_INCREMENT):
        report = shim.client.increment(table: op.tableId, key: key, by: op.delta, rejectRules: rules)
    default:
        return Int32(FULVA_ERROR_INVALID_ARGUMENT)
    }
    shim.counters.rounds += UInt64(report.roundTrips)
    shim.counters.tagBytes += UInt64(report.tagBytes)
    var o = fulva_client_outcome()
    switch report.outcome {
    case .found(let value, let version):
        o.answer = UInt32(FULVA_ANSWER_OBJECT)
        o.version = version
        o.valueLength = UInt32(value.count)
        if let buffer = op.valueBuffer, !value.isEmpty {
            value.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: min(value.count, Int(op.valueCapacity))) }
        }
    case .absent:
        o.answer = UInt32(FULVA_ANSWER_ABSENT)
    case .written(let version), .removed(let version):
        o.version = version
    case .incremented(let value, let version):
        o.version = version
        o.newValue = value
    case .rejected(let status):
        o.status = status
    case .failed:
        shim.counters.failed += 1
        o.status = Int32(FULVA_ERROR_UNAVAILABLE)
    }
    outcome.pointee = o
    return Int32(FULVA_OK)
}

@_cdecl("fulva_shim_migrations")
public func fulva_shim_migrations(_ pointer: UnsafeMutableRawPointer?) -> UInt32 {
    guard let shim = shimOf(pointer) else { return 0 }
    return UInt32(shim.client.migrations.migrations.count)
}

@_cdecl("fulva_shim_get_counters")
public func fulva_shim_get_counters(_ pointer: UnsafeMutableRawPointer?,
                                _ counters: UnsafeMutablePointer<fulva_shim_counters>?) -> Int32 {
    guard let shim = shimOf(pointer), let counters else { return Int32(FULVA_ERROR_INVALID_ARGUMENT) }
    counters.pointee = shim.counters
    return Int32(FULVA_OK)
}

@_cdecl("fulva_shim_stop")
public func fulva_shim_stop(_ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    Unmanaged<ClientShim>.fromOpaque(pointer).release()
}
