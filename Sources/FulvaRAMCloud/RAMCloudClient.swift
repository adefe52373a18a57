import CRAMCloud
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

    /// RAMCloud's STATUS_OBJECT_DOESNT_EXIST.
    public static let objectDoesntExist: Int32 = 2
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

    /// RAMCloud's own source-driven migration of a tablet to `newOwner`.
    public func migrateTablet(coordinator: String, cluster: String = "main", tableID: UInt64,
                              firstKeyHash: UInt64, lastKeyHash: UInt64, newOwner: UInt64) throws(RAMCloudError) {
        guard let call = api.migrateTablet else {
            throw RAMCloudError(status: 1001, message: "libramcloud lacks fulva_admin_migrate_tablet (built without Fulva's shims)")
        }
        var error = [CChar](repeating: 0, count: 512)
        let status = call(coordinator, cluster, tableID, firstKeyHash, lastKeyHash, newOwner, &error, error.count)
        guard status == 0 else { throw RAMCloudError(status: status, message: error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }) }
    }
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
