import CZooKeeper
#if canImport(Glibc)
import Glibc
#endif
import FulvaCore

/// A ZooKeeper failure: ZooKeeper's code and what was being done.
public struct ZooKeeperError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var description: String { message }

    public var isConflict: Bool { code == Int32(FULVA_ZK_BAD_VERSION) }
    public var isMissing: Bool { code == Int32(FULVA_ZK_NO_NODE) }
}

/// One ZooKeeper session (libzookeeper_mt), opened again when it expires
/// (a process starved of CPU for longer than the session timeout loses
/// it). Calls block until ZooKeeper answers or the session times out.
public final class ZooKeeper: @unchecked Sendable {
    private var handle: OpaquePointer
    private var mutex = pthread_mutex_t()
    public let hosts: String
    let connectTimeoutMillis: Int32
    let sessionTimeoutMillis: Int32

    /// `locator` is "host:port[,...]" or RAMCloud's "zk:host:port".
    public init(locator: String, timeoutMillis: Int32 = 5000, sessionTimeoutMillis: Int32 = 30_000) throws(ZooKeeperError) {
        hosts = locator.hasPrefix("zk:") ? String(locator.dropFirst(3)) : locator
        connectTimeoutMillis = timeoutMillis
        self.sessionTimeoutMillis = sessionTimeoutMillis
        handle = try Self.open(hosts, timeoutMillis, sessionTimeoutMillis)
        pthread_mutex_init(&mutex, nil)
    }

    deinit {
        fulva_zk_close(handle)
        pthread_mutex_destroy(&mutex)
    }

    private static func open(_ hosts: String, _ connect: Int32, _ session: Int32) throws(ZooKeeperError) -> OpaquePointer {
        var error = [CChar](repeating: 0, count: 256)
        guard let handle = fulva_zk_open(hosts, connect, session, &error, error.count) else {
            throw ZooKeeperError(code: Int32(FULVA_ZK_CONNECTION_LOSS),
                                 message: error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return handle
    }

    /// Runs one call; once more on a fresh session if the session expired.
    private func call(_ body: (OpaquePointer) -> Int32) throws(ZooKeeperError) -> Int32 {
        pthread_mutex_lock(&mutex)
        let current = handle
        pthread_mutex_unlock(&mutex)
        let code = body(current)
        guard code == Int32(FULVA_ZK_SESSION_EXPIRED) else { return code }
        let fresh = try Self.open(hosts, connectTimeoutMillis, sessionTimeoutMillis)
        pthread_mutex_lock(&mutex)
        let stale = handle
        handle = fresh
        pthread_mutex_unlock(&mutex)
        if stale == current { fulva_zk_close(stale) }
        return body(fresh)
    }

    private func check(_ code: Int32, _ what: @autoclosure () -> String) throws(ZooKeeperError) {
        guard code == Int32(FULVA_ZK_OK) else {
            throw ZooKeeperError(code: code, message: "ZooKeeper \(hosts): \(what()): \(String(cString: fulva_zk_error(code)))")
        }
    }

    /// Creates a node; with `sequential`, returns the path ZooKeeper chose.
    @discardableResult
    public func create(_ path: String, data: [UInt8] = [], sequential: Bool = false) throws(ZooKeeperError) -> String {
        var created = [CChar](repeating: 0, count: 512)
        let code = try call { handle in
            data.withUnsafeBytes {
                fulva_zk_create(handle, path, $0.baseAddress, Int32($0.count), sequential ? 1 : 0, &created, Int32(created.count))
            }
        }
        try check(code, "create \(path)")
        return created.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Creates the node and its parents unless they exist.
    public func ensure(_ path: String) throws(ZooKeeperError) {
        var prefix = ""
        for part in path.split(separator: "/") {
            prefix += "/" + part
            var created = [CChar](repeating: 0, count: 512)
            let code = try call { fulva_zk_create($0, prefix, nil, -1, 0, &created, Int32(created.count)) }
            if code != Int32(FULVA_ZK_NODE_EXISTS) { try check(code, "create \(prefix)") }
        }
    }

    /// The node's data and version, or nil when it does not exist.
    public func get(_ path: String) throws(ZooKeeperError) -> (data: [UInt8], version: Int32)? {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var length = Int32(buffer.count)
        var version: Int32 = 0
        let code = try call { handle in
            length = Int32(buffer.count)
            return buffer.withUnsafeMutableBytes { fulva_zk_get(handle, path, $0.baseAddress, &length, &version) }
        }
        if code == Int32(FULVA_ZK_NO_NODE) { return nil }
        try check(code, "read \(path)")
        return (Array(buffer.prefix(Int(max(length, 0)))), version)
    }

    /// Writes the node only if it is still at `version`; returns the new one.
    @discardableResult
    public func set(_ path: String, data: [UInt8], expectedVersion: Int32) throws(ZooKeeperError) -> Int32 {
        var newVersion: Int32 = 0
        let code = try call { handle in
            data.withUnsafeBytes {
                fulva_zk_set(handle, path, $0.baseAddress, Int32($0.count), expectedVersion, &newVersion)
            }
        }
        try check(code, "write \(path) at version \(expectedVersion)")
        return newVersion
    }

    public func delete(_ path: String, expectedVersion: Int32 = -1) throws(ZooKeeperError) {
        try check(try call { fulva_zk_delete($0, path, expectedVersion) }, "delete \(path)")
    }

    public func children(_ path: String) throws(ZooKeeperError) -> [String] {
        var names = [CChar](repeating: 0, count: 1 << 20)
        let code = try call { fulva_zk_children($0, path, &names, Int32(names.count)) }
        if code == Int32(FULVA_ZK_NO_NODE) { return [] }
        try check(code, "list \(path)")
        return names.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }.split(separator: "\n").map(String.init)
    }
}

/// Migration records in ZooKeeper, one node per migration under
/// /fulva/<cluster>/migrations. The node's version is the record's
/// revision: every change is a conditional write on it, so a cancel and a
/// completion cannot both win. Ids come from ZooKeeper's sequence counter,
/// so they order migrations by age.
public struct MigrationRecordStore: Sendable {
    public let zooKeeper: ZooKeeper
    public let root: String

    /// Where ids come from: ZooKeeper's sequence counter of this node's children.
    let counter: String

    public init(zooKeeper: ZooKeeper, cluster: String = "main") throws(ZooKeeperError) {
        self.zooKeeper = zooKeeper
        self.root = "/fulva/\(cluster)/migrations"
        self.counter = "/fulva/\(cluster)/migration-ids"
        try zooKeeper.ensure(root)
        try zooKeeper.ensure(counter)
    }

    func path(_ id: MigrationID) -> String { root + "/m-" + String(id.rawValue) }

    /// Creates the record of a new migration (phase preparing) and returns
    /// it with its id; `request.id` is ignored.
    public func create(_ request: MigrationRequest, at time: Int64,
                       throttleBytesPerSecond: UInt64 = 0) throws(ZooKeeperError) -> MigrationRecord {
        let sequence = try zooKeeper.create(counter + "/id-", sequential: true)
        guard let number = UInt64(sequence.split(separator: "-").last ?? "") else {
            throw ZooKeeperError(code: -1, message: "unexpected sequence node \(sequence)")
        }
        // The counter lives on in the parent; the node itself is not needed.
        try? zooKeeper.delete(sequence)
        var record = MigrationRequest(id: MigrationID(number + 1), tablet: request.tablet, source: request.source,
                                      destination: request.destination, strategy: request.strategy,
                                      partitions: request.partitions, reverses: request.reverses).record(createdAt: time)
        record.throttleBytesPerSecond = throttleBytesPerSecond
        try zooKeeper.create(path(record.id), data: RecordCodec.encode(record))
        record.revision = 0
        return record
    }

    public func load(_ id: MigrationID) throws(ZooKeeperError) -> MigrationRecord? {
        guard let (data, version) = try zooKeeper.get(path(id)) else { return nil }
        guard var record = RecordCodec.decode(data) else {
            throw ZooKeeperError(code: -1, message: "the record at \(path(id)) is unreadable")
        }
        record.revision = UInt64(version)
        return record
    }

    /// Removes a record no migration ever ran under (a start refused
    /// after its record was written), as long as nobody changed it.
    public func remove(_ record: MigrationRecord) throws(ZooKeeperError) {
        try zooKeeper.delete(path(record.id), expectedVersion: Int32(record.revision))
    }

    /// Applies `change` to the current record and writes it conditionally,
    /// retrying on a concurrent write. `change` throws to give up (an
    /// illegal phase change, for instance); its error is rethrown.
    @discardableResult
    public func update(_ id: MigrationID, attempts: Int = 10,
                       _ change: (inout MigrationRecord) throws -> Void) throws -> MigrationRecord {
        var attempt = 0
        while true {
            attempt += 1
            guard var record = try load(id) else {
                throw ZooKeeperError(code: Int32(FULVA_ZK_NO_NODE), message: "no record of \(id) in \(root)")
            }
            let revision = record.revision
            try change(&record)
            let written = try writeIfUnchanged(record, revision: revision)
            if let written { return written }
            if attempt >= attempts {
                throw ZooKeeperError(code: Int32(FULVA_ZK_BAD_VERSION),
                                     message: "\(id): the record kept changing under \(attempts) attempts")
            }
        }
    }

    /// The record as written, or nil when someone else wrote it first.
    private func writeIfUnchanged(_ record: MigrationRecord, revision: UInt64) throws(ZooKeeperError) -> MigrationRecord? {
        let result = Result { () throws(ZooKeeperError) -> Int32 in
            try zooKeeper.set(path(record.id), data: RecordCodec.encode(record), expectedVersion: Int32(revision))
        }
        switch result {
        case .success(let version):
            var written = record
            written.revision = UInt64(version)
            return written
        case .failure(let error):
            if error.isConflict { return nil }
            throw error
        }
    }

    /// Every record, oldest first.
    public func list() throws(ZooKeeperError) -> [MigrationRecord] {
        let ids = try zooKeeper.children(root).compactMap { $0.hasPrefix("m-") ? UInt64($0.dropFirst(2)) : nil }.sorted()
        var records: [MigrationRecord] = []
        for id in ids { if let record = try load(MigrationID(id)) { records.append(record) } }
        return records
    }
}

/// The record's bytes in ZooKeeper: "key=value" lines, readable with
/// ZooKeeper's own shell.
public enum RecordCodec {
    public static func encode(_ r: MigrationRecord) -> [UInt8] {
        var lines = [
            "id=\(r.id.rawValue)", "table=\(r.tablet.tableID)", "firstKeyHash=\(r.tablet.range.start)",
            "lastKeyHash=\(r.tablet.range.end)", "source=\(r.source.rawValue)", "destination=\(r.destination.rawValue)",
            "strategy=\(r.strategy.rawValue)", "phase=\(r.phase.rawValue)", "progress=\(r.progress)",
            "objectsMoved=\(r.objectsMoved)", "bytesMoved=\(r.bytesMoved)", "bucketCount=\(r.bucketCount)",
            "bucketsReplayed=\(r.bucketsReplayed)", "pullBatches=\(r.pullBatches)",
            "createdAt=\(r.createdAt)", "updatedAt=\(r.updatedAt)",
        ]
        if let bound = r.versionBound { lines.append("versionBound=\(bound)") }
        if r.throttleBytesPerSecond > 0 { lines.append("throttleBytesPerSecond=\(r.throttleBytesPerSecond)") }
        for phase in MigrationPhase.allCases { if let time = r.enteredAt[phase] { lines.append("entered.\(phase.rawValue)=\(time)") } }
        if let m = r.reversedBy { lines.append("reversedBy=\(m.rawValue)") }
        if let m = r.reverseOf { lines.append("reverseOf=\(m.rawValue)") }
        if r.finishing { lines.append("finishing=1") }
        if let error = r.lastError { lines.append("lastError=" + String(error.map { $0 == "\n" ? " " : $0 })) }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    public static func decode(_ bytes: [UInt8]) -> MigrationRecord? {
        var fields: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        func number(_ key: String) -> UInt64? { fields[key].flatMap { UInt64($0) } }
        guard let id = number("id"), let table = number("table"), let first = number("firstKeyHash"),
              let last = number("lastKeyHash"), let range = try? KeyHashRange(start: first, end: last),
              let source = number("source"), let destination = number("destination"),
              let strategy = fields["strategy"].flatMap(Strategy.init(rawValue:)),
              let phase = fields["phase"].flatMap(MigrationPhase.init(rawValue:)) else { return nil }
        var record = MigrationRecord(id: MigrationID(id), tablet: Tablet(tableID: table, range: range),
                                     source: ServerID(source), destination: ServerID(destination), strategy: strategy,
                                     createdAt: fields["createdAt"].flatMap { Int64($0) } ?? 0)
        record.phase = phase
        record.progress = fields["progress"].flatMap { Double($0) } ?? 0
        record.objectsMoved = number("objectsMoved") ?? 0
        record.bytesMoved = number("bytesMoved") ?? 0
        record.bucketCount = number("bucketCount") ?? 0
        record.bucketsReplayed = number("bucketsReplayed") ?? 0
        record.pullBatches = number("pullBatches") ?? 0
        record.updatedAt = fields["updatedAt"].flatMap { Int64($0) } ?? record.createdAt
        record.versionBound = number("versionBound")
        record.lastError = fields["lastError"]
        record.throttleBytesPerSecond = number("throttleBytesPerSecond") ?? 0
        for phase in MigrationPhase.allCases {
            if let time = fields["entered.\(phase.rawValue)"].flatMap({ Int64($0) }) { record.enteredAt[phase] = time }
        }
        record.reversedBy = number("reversedBy").map(MigrationID.init)
        record.reverseOf = number("reverseOf").map(MigrationID.init)
        record.finishing = fields["finishing"] == "1"
        return record
    }
}
