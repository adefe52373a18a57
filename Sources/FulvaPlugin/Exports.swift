// The dynamic library RAMCloud loads: in a master, thin C exports (fulva.h)
// over FulvaServer's MigrationManager (this file); in a client, the shim
// (ClientShim.swift). Nothing here decides anything; it
// converts between the C structs and Swift values and never lets an error
// cross the boundary as anything but a status.
import CFulva
import FulvaCore
import FulvaServer
import FulvaZooKeeper

/// Migration records in the cluster's ZooKeeper. A migration started
/// without a record (a test driving the plugin directly) has none to update.
final class ZooKeeperRecords: MigrationRecordSink {
    let store: MigrationRecordStore
    init(store: MigrationRecordStore) { self.store = store }

    func update(_ id: MigrationID, _ change: (inout MigrationRecord) throws -> Void) throws {
        do {
            try store.update(id, change)
        } catch let error as ZooKeeperError where error.isMissing {
            return
        }
    }
}

/// The host's operations table, as a MigrationHost.
final class CHost: MigrationHost {
    let ops: fulva_host_ops

    init(_ ops: fulva_host_ops) { self.ops = ops }

    func log(_ level: LogLevel, _ message: String) {
        message.withCString { ops.log(ops.context, level.rawValue, $0) }
    }

    private func call(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws(HostError) {
        var error = [CChar](repeating: 0, count: 256)
        let status = error.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        guard status == FULVA_OK else {
            throw HostError(status: status, message: error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
    }

    func prepareSource(_ request: MigrationRequest) throws(HostError) -> PreparedSource {
        var c = request.cValue
        var reply = fulva_prepare_reply()
        try call { ops.prepare_source(ops.context, &c, &reply, $0, $1) }
        return PreparedSource(versionBound: reply.versionBound, bucketCount: reply.bucketCount,
                              partitions: Int(reply.partitions), completionRecords: Int(reply.completionRecords))
    }

    func takeOwnership(_ request: MigrationRequest, prepared: PreparedSource) throws(HostError) {
        var c = request.cValue
        var p = fulva_prepare_reply(versionBound: prepared.versionBound, bucketCount: prepared.bucketCount,
                                    partitions: UInt32(prepared.partitions),
                                    completionRecords: UInt32(prepared.completionRecords))
        try call { ops.take_ownership(ops.context, &c, &p, $0, $1) }
    }

    func pull(_ request: MigrationRequest, _ batches: [PullBatch]) -> [PullOutcome] {
        var c = request.cValue
        let pulls = batches.map {
            fulva_pull_request(partition: UInt32($0.partition), reserved: 0, firstBucket: $0.buckets.lowerBound,
                               endBucket: $0.buckets.upperBound)
        }
        var replies = [fulva_pull_reply](repeating: fulva_pull_reply(), count: batches.count)
        let status = replies.withUnsafeMutableBufferPointer { r in
            pulls.withUnsafeBufferPointer { p in ops.pull(ops.context, &c, p.baseAddress, p.count, r.baseAddress) }
        }
        guard status == FULVA_OK else { return batches.map { _ in .failed(status: status) } }
        return replies.map {
            $0.status == FULVA_OK
                ? .replayed(objects: Int($0.objects), bytes: $0.bytes, resumeBucket: $0.resumeBucket)
                : .failed(status: $0.status)
        }
    }

    func publishWatermark(_ id: MigrationID, partition: Int, bucket: UInt64) {
        _ = ops.publish_watermark(ops.context, id.rawValue, UInt32(partition), bucket)
    }

    func finish(_ request: MigrationRequest) throws(HostError) {
        var c = request.cValue
        try call { ops.finish(ops.context, &c, $0, $1) }
    }

    func abandon(_ request: MigrationRequest) throws(HostError) {
        var c = request.cValue
        try call { ops.abandon(ops.context, &c, $0, $1) }
    }
}

extension MigrationRequest {
    var cValue: fulva_migration_request {
        fulva_migration_request(
            migrationId: id.rawValue,
            tablet: fulva_tablet(tableId: tablet.tableID, firstKeyHash: tablet.range.start, lastKeyHash: tablet.range.end),
            source: source.rawValue, destination: destination.rawValue,
            strategy: strategy == .rocksteady ? UInt32(FULVA_STRATEGY_ROCKSTEADY) : UInt32(FULVA_STRATEGY_FULVA),
            partitions: UInt32(partitions), reverses: reverses?.rawValue ?? 0)
    }

    init(_ c: fulva_migration_request) throws(FulvaError) {
        let range = try KeyHashRange(start: c.tablet.firstKeyHash, end: c.tablet.lastKeyHash)
        let strategy: Strategy
        switch Int(c.strategy) {
        case Int(FULVA_STRATEGY_FULVA): strategy = .fulva
        case Int(FULVA_STRATEGY_ROCKSTEADY): strategy = .rocksteady
        default: throw .unknownStrategy("number \(c.strategy)")
        }
        self.init(id: MigrationID(c.migrationId), tablet: Tablet(tableID: c.tablet.tableId, range: range),
                  source: ServerID(c.source), destination: ServerID(c.destination), strategy: strategy,
                  partitions: Int(c.partitions), reverses: c.reverses == 0 ? nil : MigrationID(c.reverses))
    }
}

/// One loaded plugin: the manager and the host it acts through.
final class PluginInstance {
    let manager: MigrationManager
    init(manager: MigrationManager) { self.manager = manager }
}

func report(_ message: String, _ error: UnsafeMutablePointer<CChar>?, _ length: Int) {
    guard let error, length > 0 else { return }
    let bytes = Array(message.utf8.prefix(length - 1))
    for (i, b) in bytes.enumerated() { error[i] = CChar(bitPattern: b) }
    error[bytes.count] = 0
}

func instance(_ plugin: UnsafeMutableRawPointer?) -> PluginInstance? {
    plugin.map { Unmanaged<PluginInstance>.fromOpaque($0).takeUnretainedValue() }
}

@_cdecl("fulva_plugin_abi_version")
public func fulva_plugin_abi_version() -> UInt32 { FULVA_ABI_VERSION }

@_cdecl("fulva_plugin_start")
public func fulva_plugin_start(_ host: UnsafePointer<fulva_host_ops>?, _ plugin: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                               _ error: UnsafeMutablePointer<CChar>?, _ errorLength: Int) -> Int32 {
    guard let host, let plugin else {
        report("no host operations or no place for the plugin handle", error, errorLength)
        return Int32(FULVA_ERROR_INVALID_ARGUMENT)
    }
    let ops = host.pointee
    guard ops.abiVersion == FULVA_ABI_VERSION, Int(ops.structSize) == MemoryLayout<fulva_host_ops>.size else {
        report("host ABI version \(ops.abiVersion) (operations table of \(ops.structSize) bytes); "
               + "this plugin needs version \(FULVA_ABI_VERSION) (\(MemoryLayout<fulva_host_ops>.size) bytes)",
               error, errorLength)
        return Int32(FULVA_ERROR_ABI_MISMATCH)
    }
    // Every operation must be there: the plugin calls them without checking.
    let present: [Bool] = [ops.log != nil, ops.prepare_source != nil, ops.take_ownership != nil, ops.pull != nil,
                           ops.publish_watermark != nil, ops.finish != nil, ops.abandon != nil]
    guard present.allSatisfy({ $0 }) else {
        report("the host's operations table has empty entries", error, errorLength)
        return Int32(FULVA_ERROR_INVALID_ARGUMENT)
    }
    let cHost = CHost(ops)
    var records: MigrationRecordSink? = nil
    let storage = ops.externalStorage.map { String(cString: $0) } ?? ""
    if storage.hasPrefix("zk:") {
        let cluster = ops.clusterName.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "main"
        do {
            records = ZooKeeperRecords(store: try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: storage),
                                                                       cluster: cluster))
        } catch {
            cHost.log(.warning, "migration records unavailable (\(error)); migrations run without them")
        }
    }
    let manager = MigrationManager(host: cHost, serverID: ServerID(ops.serverId), records: records)
    plugin.pointee = Unmanaged.passRetained(PluginInstance(manager: manager)).toOpaque()
    return Int32(FULVA_OK)
}

@_cdecl("fulva_plugin_migrate")
public func fulva_plugin_migrate(_ plugin: UnsafeMutableRawPointer?, _ request: UnsafePointer<fulva_migration_request>?,
                                 _ error: UnsafeMutablePointer<CChar>?, _ errorLength: Int) -> Int32 {
    guard let instance = instance(plugin), let request else {
        report("no plugin or no request", error, errorLength)
        return Int32(FULVA_ERROR_INVALID_ARGUMENT)
    }
    do throws(FulvaError) {
        try instance.manager.accept(try MigrationRequest(request.pointee))
        return Int32(FULVA_OK)
    } catch let failure {
        report(failure.description, error, errorLength)
        return Int32(FULVA_ERROR_REFUSED)
    }
}

@_cdecl("fulva_plugin_drive")
public func fulva_plugin_drive(_ plugin: UnsafeMutableRawPointer?, _ migrationId: UInt64) -> Int32 {
    guard let instance = instance(plugin) else { return Int32(FULVA_ERROR_INVALID_ARGUMENT) }
    guard let record = instance.manager.drive(MigrationID(migrationId)) else { return Int32(FULVA_ERROR_UNKNOWN_MIGRATION) }
    guard record.phase == .done else {
        return instance.manager.status(record.id)?.failure?.status ?? Int32(FULVA_ERROR_INTERNAL)
    }
    return Int32(FULVA_OK)
}

@_cdecl("fulva_plugin_status")
public func fulva_plugin_status(_ plugin: UnsafeMutableRawPointer?, _ migrationId: UInt64,
                                _ status: UnsafeMutablePointer<fulva_migration_status>?) -> Int32 {
    guard let instance = instance(plugin), let status else { return Int32(FULVA_ERROR_INVALID_ARGUMENT) }
    guard let (record, failure) = instance.manager.status(MigrationID(migrationId)) else {
        return Int32(FULVA_ERROR_UNKNOWN_MIGRATION)
    }
    var s = fulva_migration_status()
    s.request = MigrationRequest(id: record.id, tablet: record.tablet, source: record.source,
                                 destination: record.destination, strategy: record.strategy).cValue
    switch record.phase {
    case .preparing: s.phase = UInt32(FULVA_PHASE_PREPARING)
    case .moving, .cancelling: s.phase = UInt32(FULVA_PHASE_MOVING)
    case .done, .cancelled: s.phase = UInt32(FULVA_PHASE_DONE)
    case .failed: s.phase = UInt32(FULVA_PHASE_FAILED)
    }
    s.lastStatus = failure?.status ?? 0
    s.versionBound = record.versionBound ?? 0
    s.bucketCount = record.bucketCount
    s.bucketsReplayed = record.bucketsReplayed
    s.objectsMoved = record.objectsMoved
    s.bytesMoved = record.bytesMoved
    s.pullBatches = record.pullBatches
    s.startMicros = UInt64(record.createdAt) * 1000
    s.endMicros = record.phase.isTerminal ? UInt64(record.updatedAt) * 1000 : 0
    withUnsafeMutableBytes(of: &s.lastError) { buffer in
        let bytes = Array((record.lastError ?? "").utf8.prefix(buffer.count - 1))
        buffer.copyBytes(from: bytes)
        buffer[bytes.count] = 0
    }
    status.pointee = s
    return Int32(FULVA_OK)
}

@_cdecl("fulva_plugin_source_prepare")
public func fulva_plugin_source_prepare(_ plugin: UnsafeMutableRawPointer?, _ request: UnsafePointer<fulva_migration_request>?,
                                        _ bucketCount: UInt64, _ safeVersion: UInt64, _ highestVersion: UInt64,
                                        _ versionBound: UnsafeMutablePointer<UInt64>?,
                                        _ error: UnsafeMutablePointer<CChar>?, _ errorLength: Int) -> Int32 {
    guard let instance = instance(plugin), let request, let versionBound else {
        report("no plugin, request or output", error, errorLength)
        return Int32(FULVA_ERROR_INVALID_ARGUMENT)
    }
    do throws(FulvaError) {
        versionBound.pointee = try instance.manager.sourcePrepare(
            try MigrationRequest(request.pointee), bucketCount: bucketCount, safeVersion: safeVersion,
            highestVersion: highestVersion)
        return Int32(FULVA_OK)
    } catch let failure {
        report(failure.description, error, errorLength)
        return Int32(FULVA_ERROR_REFUSED)
    }
}

@_cdecl("fulva_plugin_source_end")
public func fulva_plugin_source_end(_ plugin: UnsafeMutableRawPointer?, _ migrationId: UInt64) -> Int32 {
    guard let instance = instance(plugin) else { return Int32(FULVA_ERROR_INVALID_ARGUMENT) }
    instance.manager.sourceEnded(MigrationID(migrationId))
    return Int32(FULVA_OK)
}

@_cdecl("fulva_plugin_stop")
public func fulva_plugin_stop(_ plugin: UnsafeMutableRawPointer?) {
    // The instance stays: the library is loaded with RTLD_NODELETE and a
    // driver thread may still hold it; stopping only stops accepting.
    _ = plugin
}
