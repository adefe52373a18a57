import FulvaCore
import FulvaServer
import Testing

/// A scripted source: it can cut replies short, fail pulls for a while, or
/// refuse Prepare; it records which buckets were replayed.
final class ScriptedHost: MigrationHost {
    var bucketCount: UInt64 = 256
    var failFirstAttempts = 0
    var cutEveryOtherReply = false
    var refusePrepare: HostError?
    /// Prepare answers "unavailable" this many times first.
    var unavailablePrepares = 0
    var replayed: [UInt64: Int] = [:]
    var watermarks: [Int: UInt64] = [:]
    var calls: [String] = []
    private var attempts: [Range<UInt64>: Int] = [:]
    private var replies = 0

    func log(_ level: LogLevel, _ message: String) {}
    func prepareSource(_ request: MigrationRequest) throws(HostError) -> PreparedSource {
        calls.append("prepare")
        if let refusePrepare { throw refusePrepare }
        if unavailablePrepares > 0 {
            unavailablePrepares -= 1
            throw HostError(status: HostError.unavailable, message: "1 prepared transaction operation was not decided")
        }
        return PreparedSource(versionBound: 50, bucketCount: bucketCount, partitions: request.partitions, completionRecords: 0)
    }
    func takeOwnership(_ request: MigrationRequest, prepared: PreparedSource) throws(HostError) { calls.append("own") }
    func pull(_ request: MigrationRequest, _ batches: [PullBatch]) -> [PullOutcome] {
        batches.map { batch in
            attempts[batch.buckets, default: 0] += 1
            if attempts[batch.buckets]! <= failFirstAttempts { return .failed(status: 1001) }
            replies += 1
            let end = cutEveryOtherReply && replies % 2 == 0 && batch.buckets.count > 1
                ? batch.buckets.lowerBound + UInt64(batch.buckets.count / 2) : batch.buckets.upperBound
            for bucket in batch.buckets.lowerBound..<end { replayed[bucket, default: 0] += 1 }
            return .replayed(objects: Int(end - batch.buckets.lowerBound), bytes: 0, resumeBucket: end)
        }
    }
    func publishWatermark(_ id: MigrationID, partition: Int, bucket: UInt64) {
        #expect(bucket > watermarks[partition, default: 0], "watermarks only grow")
        watermarks[partition] = bucket
    }
    func finish(_ request: MigrationRequest) throws(HostError) { calls.append("finish") }
    func abandon(_ request: MigrationRequest) throws(HostError) { calls.append("abandon") }
}

@Suite struct MigrationManagerTests {
    let request = MigrationRequest(id: MigrationID(9), tablet: Tablet(tableID: 4), source: ServerID(1),
                                   destination: ServerID(2), strategy: .fulva, partitions: 4)

    func run(_ host: ScriptedHost, bucketsPerBatch: UInt64 = 16) throws -> MigrationRecord? {
        var defaults = MigrationManager.Defaults()
        defaults.pullFailureWindowMillis = 100
        defaults.pullRetryPauseMicros = 1000
        defaults.bucketsPerBatch = bucketsPerBatch
        defaults.prepareRetryPauseMicros = 1000
        let manager = MigrationManager(host: host, serverID: ServerID(2), defaults: defaults)
        try manager.accept(request)
        return manager.drive(request.id)
    }

    @Test func cutRepliesAreResumedAndEveryBucketIsReplayedOnce() throws {
        let host = ScriptedHost()
        host.cutEveryOtherReply = true
        let record = try #require(try run(host))
        #expect(record.phase == .done)
        #expect(host.replayed.count == Int(host.bucketCount) && host.replayed.values.allSatisfy { $0 == 1 })
        #expect(record.bucketsReplayed == host.bucketCount && record.progress == 1)
        #expect(host.calls == ["prepare", "own", "finish"])
    }

    @Test func pullsThatFailForAWhileAreRetried() throws {
        let host = ScriptedHost()
        host.failFirstAttempts = 2
        let record = try #require(try run(host))
        #expect(record.phase == .done)
        #expect(host.replayed.values.allSatisfy { $0 == 1 })
    }

    @Test func aSourceThatNeverAnswersFailsTheMigration() throws {
        let host = ScriptedHost()
        host.failFirstAttempts = 1_000
        let record = try #require(try run(host))
        #expect(record.phase == .failed)
        #expect(record.lastError?.contains("failed") == true)
        #expect(host.calls == ["prepare", "own", "abandon"])
        #expect(host.watermarks.isEmpty, "no watermark moved over unreplayed buckets")
    }

    @Test func aRefusedPrepareNeverTakesOwnership() throws {
        let host = ScriptedHost()
        host.refusePrepare = HostError(status: 1003, message: "the source does not own exactly this tablet")
        let record = try #require(try run(host))
        #expect(record.phase == .failed && record.lastError == "the source does not own exactly this tablet")
        #expect(host.calls == ["prepare", "abandon"])
    }

    @Test func aPrepareTheSourceCannotTakeNowIsAskedAgain() throws {
        let host = ScriptedHost()
        host.unavailablePrepares = 3
        let record = try #require(try run(host))
        #expect(record.phase == .done)
        #expect(host.calls == ["prepare", "prepare", "prepare", "prepare", "own", "finish"])

        let busy = ScriptedHost()
        busy.unavailablePrepares = 100
        let failed = try #require(try run(busy))
        #expect(failed.phase == .failed && failed.lastError == "1 prepared transaction operation was not decided")
        #expect(busy.calls == ["prepare", "prepare", "prepare", "prepare", "abandon"], "4 attempts, then the migration fails")
    }

    @Test func badRequestsAreRefusedBeforeAnythingHappens() throws {
        let host = ScriptedHost()
        let manager = MigrationManager(host: host, serverID: ServerID(2))
        var elsewhere = request
        elsewhere.destination = ServerID(3)
        #expect(throws: FulvaError.self) { try manager.accept(elsewhere) }
        var same = request
        same.source = ServerID(2)
        #expect(throws: FulvaError.self) { try manager.accept(same) }
        var baseline = request
        baseline.strategy = .source
        #expect(throws: FulvaError.self) { try manager.accept(baseline) }
        try manager.accept(request)
        var overlapping = request
        overlapping.id = MigrationID(10)
        #expect(throws: FulvaError.self) { try manager.accept(overlapping) }
        #expect(host.calls.isEmpty)
    }
}
