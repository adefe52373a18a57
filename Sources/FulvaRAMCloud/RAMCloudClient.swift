import CFulva
import CRAMCloud
import FulvaClient
import FulvaCore
import Foundation

/// A RAMCloud status other than STATUS_OK, with RAMCloud's own name for it.
public struct RAMCloudError: Error, CustomStringConvertible, Equatable {
    public let status: Int32
    public let message: String

    public var description: String { "RAMCloud status \(status) (\(message))" }

    static func check(_ status: Int32) throws(RAMCloudError) {
        guard status != 0 else { return }
        throw RAMCloudError(status: status, message: fulva_rc_status_string(status).map { String(cString: $0) } ?? "unknown")
    }

    // RAMCloud's Status values (src/Status.h), the ones callers act on.
    public static let unknownTablet: Int32 = 1
    public static let tableDoesntExist: Int32 = 2
    public static let objectDoesntExist: Int32 = 3
    /// A reject rule refused the operation.
    public static let wrongVersion: Int32 = 5
}

/// libramcloud.so, loaded at run time.
public final class RAMCloudLibrary: @unchecked Sendable {
    let api: fulva_rc_api

    public init(path: String) throws(RAMCloudLoadError) {
        var api = fulva_rc_api()
        var error = [CChar](repeating: 0, count: 512)
        guard fulva_rc_load(path, &api, &error, error.count) == 0 else {
            throw RAMCloudLoadError(message: error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        self.api = api
    }

    /// The fulva.h ABI version the library was built with, or nil when it
    /// lacks Fulva's shims.
    public var abiVersion: UInt32? { api.abiVersion.map { $0() } }

    /// The fulva.h ABI version this program was built against.
    public static let expectedABIVersion = FULVA_ABI_VERSION

    /// Fails unless the library carries Fulva's admin calls with the ABI
    /// version this program was built against.
    func requireFulva() throws(RAMCloudError) {
        guard let version = abiVersion else {
            throw RAMCloudError(status: 1001, message: "libramcloud lacks Fulva's shims (fulva_abi_version missing): build it with scripts/build-ramcloud")
        }
        guard version == FULVA_ABI_VERSION else {
            throw RAMCloudError(status: 1001, message: "libramcloud carries fulva.h ABI version \(version), this program needs \(FULVA_ABI_VERSION): rebuild RAMCloud with scripts/build-ramcloud")
        }
    }
}

/// An increment whose reply was lost (see `RAMCloudClient.incrementLosingReply`).
public struct LostReply {
    let handle: UnsafeMutableRawPointer
}

/// What `RAMCloudClient.serverCounters()` reports for one master.
public struct ServerCounters: Sendable, Equatable, Codable {
    /// RAMCloud's ServerId: generation << 32 | index.
    public var serverID: UInt64
    public var readCount: UInt64
    public var writeCount: UInt64
    public var networkInputBytes: UInt64
    public var networkOutputBytes: UInt64
    public var dpdkPacketsReceived: UInt64
    public var dpdkPacketsSent: UInt64
    /// Fulva: keys this server, as a destination, fetched ahead of their batch.
    public var priorityPulls: UInt64 = 0
    /// Fulva: reads this server, as a source, answered from its frozen
    /// copy (each the source's half of a client's dual read).
    public var sourceReads: UInt64 = 0
}

public struct RAMCloudLoadError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// One connection to a RAMCloud cluster through the C API (CRamCloud.h).
/// Not thread-safe, like the RamCloud object under it.
public final class RAMCloudClient {
    let library: RAMCloudLibrary
    let client: OpaquePointer

    public init(library: RAMCloudLibrary, coordinator: String, cluster: String = "main") throws(RAMCloudError) {
        self.library = library
        var client: OpaquePointer? = nil
        try RAMCloudError.check(library.api.connect(coordinator, cluster, &client))
        guard let client else { throw RAMCloudError(status: 1001, message: "rc_connect returned no client") }
        self.client = client
    }

    deinit { library.api.disconnect(client) }

    public func createTable(_ name: String, serverSpan: UInt32 = 1) throws(RAMCloudError) -> UInt64 {
        try RAMCloudError.check(library.api.createTable(client, name, serverSpan))
        return try tableID(name)
    }

    public func dropTable(_ name: String) throws(RAMCloudError) {
        try RAMCloudError.check(library.api.dropTable(client, name))
    }

    public func tableID(_ name: String) throws(RAMCloudError) -> UInt64 {
        var id: UInt64 = 0
        try RAMCloudError.check(library.api.getTableId(client, name, &id))
        return id
    }

    @discardableResult
    public func write(table: UInt64, key: [UInt8], value: [UInt8]) throws(RAMCloudError) -> UInt64 {
        var version: UInt64 = 0
        let status = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                library.api.write(client, table, k.baseAddress, UInt16(k.count), v.baseAddress, UInt32(v.count), nil, &version)
            }
        }
        try RAMCloudError.check(status)
        return version
    }

    /// The value and version, or nil when the object does not exist.
    public func read(table: UInt64, key: [UInt8], maxLength: Int = 1 << 20) throws(RAMCloudError) -> (value: [UInt8], version: UInt64)? {
        var version: UInt64 = 0
        var length: UInt32 = 0
        var buffer = [UInt8](repeating: 0, count: maxLength)
        let status = key.withUnsafeBytes { k in
            buffer.withUnsafeMutableBytes { b in
                library.api.read(client, table, k.baseAddress, UInt16(k.count), nil, &version, b.baseAddress,
                                 UInt32(b.count), &length)
            }
        }
        if status == RAMCloudError.objectDoesntExist { return nil }
        try RAMCloudError.check(status)
        return (Array(buffer.prefix(Int(length))), version)
    }

    public func remove(table: UInt64, key: [UInt8]) throws(RAMCloudError) {
        var version: UInt64 = 0
        let status = key.withUnsafeBytes { k in
            library.api.remove(client, table, k.baseAddress, UInt16(k.count), nil, &version)
        }
        try RAMCloudError.check(status)
    }

    /// RAMCloud's own source-driven migration of a tablet to `newOwner`.
    public func migrateTablet(tableID: UInt64, firstKeyHash: UInt64, lastKeyHash: UInt64,
                              newOwner: UInt64) throws(RAMCloudError) {
        try library.requireFulva()
        try adminCall { error, length in
            library.api.migrateTablet!(client, tableID, firstKeyHash, lastKeyHash, newOwner, error, length)
        }
    }

    /// Splits the tablets of `table` at `splitKeyHash`.
    public func splitTablet(table: String, splitKeyHash: UInt64) throws(RAMCloudError) {
        try library.requireFulva()
        try adminCall { error, length in library.api.splitTablet!(client, table, splitKeyHash, error, length) }
    }

    /// The master that owns `keyHash` of the table, per the coordinator.
    public func owner(table: UInt64, keyHash: UInt64) throws(RAMCloudError) -> UInt64 {
        try library.requireFulva()
        var server: UInt64 = 0
        try adminCall { error, length in library.api.tabletOwner!(client, table, keyHash, &server, error, length) }
        return server
    }

    /// Asks the destination to start a Fulva (or rocksteady) migration; it
    /// returns once the destination accepted it. The migration then runs
    /// at the destination; `migrationStatus` follows it.
    public func startMigration(_ request: MigrationRequest) throws(RAMCloudError) {
        try library.requireFulva()
        var c = fulva_migration_request()
        c.migrationId = request.id.rawValue
        c.tablet = fulva_tablet(tableId: request.tablet.tableID, firstKeyHash: request.tablet.range.start,
                                lastKeyHash: request.tablet.range.end)
        c.source = request.source.rawValue
        c.destination = request.destination.rawValue
        switch request.strategy {
        case .fulva: c.strategy = UInt32(FULVA_STRATEGY_FULVA)
        case .rocksteady: c.strategy = UInt32(FULVA_STRATEGY_ROCKSTEADY)
        case .source:
            throw RAMCloudError(status: Int32(FULVA_ERROR_INVALID_ARGUMENT),
                                message: "the source strategy is RAMCloud's own migrateTablet (migrateTablet(...))")
        }
        c.partitions = UInt32(request.partitions)
        c.reverses = request.reverses?.rawValue ?? 0
        try adminCall { error, length in library.api.startMigration!(client, &c, error, length) }
    }

    /// The migration's record as its destination keeps it.
    public func migrationStatus(destination: ServerID, id: MigrationID) throws(RAMCloudError) -> MigrationRecord {
        try library.requireFulva()
        var s = fulva_migration_status()
        try adminCall { error, length in library.api.migrationStatus!(client, destination.rawValue, id.rawValue, &s, error, length) }
        let range = (try? KeyHashRange(start: s.request.tablet.firstKeyHash, end: s.request.tablet.lastKeyHash)) ?? .all
        var record = MigrationRecord(id: MigrationID(s.request.migrationId),
                                     tablet: Tablet(tableID: s.request.tablet.tableId, range: range),
                                     source: ServerID(s.request.source), destination: ServerID(s.request.destination),
                                     strategy: s.request.strategy == UInt32(FULVA_STRATEGY_ROCKSTEADY) ? .rocksteady : .fulva,
                                     createdAt: Int64(s.startMicros / 1000))
        switch Int(s.phase) {
        case Int(FULVA_PHASE_MOVING): record.phase = .moving
        case Int(FULVA_PHASE_DONE): record.phase = .done
        case Int(FULVA_PHASE_FAILED): record.phase = .failed
        default: record.phase = .preparing
        }
        record.versionBound = s.versionBound == 0 ? nil : s.versionBound
        record.bucketCount = s.bucketCount
        record.bucketsReplayed = s.bucketsReplayed
        record.progress = s.bucketCount == 0 ? 0 : Double(s.bucketsReplayed) / Double(s.bucketCount)
        record.objectsMoved = s.objectsMoved
        record.bytesMoved = s.bytesMoved
        record.pullBatches = s.pullBatches
        record.updatedAt = Int64((s.endMicros == 0 ? s.startMicros : s.endMicros) / 1000)
        let message = withUnsafeBytes(of: s.lastError) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        record.lastError = message.isEmpty ? nil : message
        return record
    }

    /// Testing: an increment executed by the key's owner whose reply is
    /// thrown away; `retryIncrement` sends the very same request again.
    public func incrementLosingReply(table: UInt64, key: [UInt8], by delta: Int64) throws(RAMCloudError) -> LostReply {
        try library.requireFulva()
        var handle: UnsafeMutableRawPointer? = nil
        try adminCall { error, length in
            key.withUnsafeBytes { k in
                library.api.incrementLosingReply!(client, table, k.baseAddress, UInt16(k.count), delta, &handle, error, length)
            }
        }
        return LostReply(handle: handle!)
    }

    /// Sends a lost-reply increment again (same RIFL id) and returns the new value it reports.
    public func retryIncrement(_ lost: LostReply) throws(RAMCloudError) -> Int64 {
        var value: Int64 = 0
        try adminCall { error, length in library.api.retryIncrement!(client, lost.handle, &value, error, length) }
        return value
    }

    /// The masters the coordinator's server list says are up (a crashed
    /// one drops out once declared dead); asks no master anything.
    public func liveMasters() throws(RAMCloudError) -> [ServerID] {
        try library.requireFulva()
        var ids = [UInt64](repeating: 0, count: 256)
        var count = 0
        try adminCall { error, length in
            ids.withUnsafeMutableBufferPointer { library.api.liveMasters!(client, $0.baseAddress, $0.count, &count, error, length) }
        }
        return ids.prefix(count).map { ServerID($0) }
    }

    /// RAMCloud's performance counters of every master the coordinator
    /// knows as up (backup-only servers are left out).
    public func serverCounters() throws(RAMCloudError) -> [ServerCounters] {
        try library.requireFulva()
        var counters = [fulva_server_counters](repeating: fulva_server_counters(), count: 64)
        var count = 0
        try adminCall { error, length in
            counters.withUnsafeMutableBufferPointer {
                library.api.serverCounters!(client, $0.baseAddress, $0.count, &count, error, length)
            }
        }
        return counters.prefix(count).map {
            ServerCounters(serverID: $0.serverId, readCount: $0.readCount, writeCount: $0.writeCount,
                           networkInputBytes: $0.networkInputBytes, networkOutputBytes: $0.networkOutputBytes,
                           dpdkPacketsReceived: $0.dpdkPacketsReceived, dpdkPacketsSent: $0.dpdkPacketsSent,
                           priorityPulls: $0.priorityPulls, sourceReads: $0.sourceReads)
        }
    }

    private func adminCall(_ call: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws(RAMCloudError) {
        var error = [CChar](repeating: 0, count: 512)
        let status = error.withUnsafeMutableBufferPointer { call($0.baseAddress!, $0.count) }
        guard status == 0 else {
            throw RAMCloudError(status: status, message: error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
    }

    /// Adds `delta` to the 8-byte integer stored under the key (absent counts
    /// as 0) and returns the new value.
    @discardableResult
    public func incrementInt64(table: UInt64, key: [UInt8], by delta: Int64) throws(RAMCloudError) -> Int64 {
        var version: UInt64 = 0
        var value: Int64 = 0
        let status = key.withUnsafeBytes { k in
            library.api.incrementInt64(client, table, k.baseAddress, UInt16(k.count), delta, nil, &version, &value)
        }
        try RAMCloudError.check(status)
        return value
    }

    /// Writes only if the object's version is still `expectedVersion`;
    /// throws RAMCloud's STATUS_WRONG_VERSION (or OBJECT_DOESNT_EXIST) otherwise.
    @discardableResult
    public func conditionalWrite(table: UInt64, key: [UInt8], value: [UInt8], expectedVersion: UInt64) throws(RAMCloudError) -> UInt64 {
        var rules = fulva_rc_reject_rules(givenVersion: expectedVersion, doesntExist: 1, exists: 0, versionLeGiven: 0, versionNeGiven: 1)
        var version: UInt64 = 0
        let status = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                library.api.write(client, table, k.baseAddress, UInt16(k.count), v.baseAddress, UInt32(v.count), &rules, &version)
            }
        }
        try RAMCloudError.check(status)
        return version
    }

    /// The id of the master that owns the key's tablet.
    public func owner(table: UInt64, key: [UInt8]) throws(RAMCloudError) -> UInt64 {
        var server: UInt64 = 0
        let status = key.withUnsafeBytes { k in
            library.api.testingGetServerId(client, table, k.baseAddress, UInt16(k.count), &server)
        }
        try RAMCloudError.check(status)
        return server
    }
}

extension RAMCloudClient {
    /// Sends the requests at once and waits for their replies, at most
    /// `timeoutMicros`; nothing is retried.
    public func execute(_ requests: [DirectRequest], timeoutMicros: UInt32) throws(RAMCloudError) -> [DirectReply] {
        try library.requireFulva()
        guard let execute = library.api.execute else {
            throw RAMCloudError(status: 1001, message: "libramcloud lacks fulva_client_execute")
        }
        do {
            return try DirectCalls.execute(requests, timeoutMicros: timeoutMicros) { ops, outcomes, count, timeout, error, length in
                execute(client, ops, outcomes, count, timeout, error, length)
            }
        } catch {
            throw RAMCloudError(status: error.status, message: error.message)
        }
    }

    /// RAMCloud's hash of a primary key.
    public func keyHash(table: UInt64, key: [UInt8]) throws(RAMCloudError) -> KeyHash {
        try library.requireFulva()
        guard let hash = library.api.keyHash else {
            throw RAMCloudError(status: 1001, message: "libramcloud lacks fulva_key_hash")
        }
        return key.withUnsafeBytes { hash(table, $0.baseAddress, UInt16($0.count)) }
    }

    /// What a migration of the tablet's key range from `server` would move:
    /// the objects its hash table holds, whatever its tablets say, and
    /// their keys' and values' bytes (counted there; fulva_admin_inventory).
    public func inventory(server: ServerID, tablet: Tablet) throws(RAMCloudError) -> (objects: UInt64, bytes: UInt64) {
        try library.requireFulva()
        var result = fulva_tablet_inventory()
        var t = fulva_tablet(tableId: tablet.tableID, firstKeyHash: tablet.range.start, lastKeyHash: tablet.range.end)
        try adminCall { error, length in library.api.inventory!(client, server.rawValue, &t, &result, error, length) }
        return (result.objects, result.bytes)
    }

    /// The raw transfer rate from `source` to `destination` over the
    /// cluster's transport (fulva_admin_transfer_probe): `bytes` fetched by
    /// the destination in replies of `chunkBytes`, `outstanding` at a time.
    public func transferProbe(from source: ServerID, to destination: ServerID, bytes: UInt64,
                              chunkBytes: UInt32, outstanding: UInt32) throws(RAMCloudError)
        -> (bytes: UInt64, nanoseconds: UInt64) {
        try library.requireFulva()
        guard library.api.transferProbe != nil else {
            throw RAMCloudError(status: Int32(FULVA_ERROR_UNAVAILABLE),
                                message: "this libramcloud has no transfer probe (rebuild with scripts/build-ramcloud)")
        }
        var probe = fulva_transfer_probe(source: source.rawValue, destination: destination.rawValue, bytes: bytes,
                                         chunkBytes: chunkBytes, outstanding: outstanding)
        var result = fulva_transfer_result()
        try adminCall { error, length in library.api.transferProbe!(client, &probe, &result, error, length) }
        return (result.bytes, result.nanos)
    }
}


extension RAMCloudClient: DirectTransport {
    public func owner(table: UInt64, key: [UInt8], keyHash: KeyHash, fresh: Bool) throws -> ServerID {
        // Fresh: the coordinator's map (this table's cached entries are
        // flushed); otherwise the map cached in this connection.
        ServerID(fresh ? try owner(table: table, keyHash: keyHash) : try owner(table: table, key: key))
    }
}
