import FulvaCore
import FulvaServer
import FulvaZooKeeper
import Testing

@Suite struct RecordCodecTests {
    @Test func recordsSurviveTheirBytes() throws {
        var record = MigrationRecord(id: MigrationID(42), tablet: Tablet(tableID: 7, range: try KeyHashRange(start: 5, end: .max)),
                                     source: ServerID(1), destination: ServerID(2), strategy: .rocksteady, createdAt: 1_700_000_000_000)
        record = try record.moved(to: .moving, at: 1_700_000_000_100)
        #expect(record.enteredAt == [.moving: 1_700_000_000_100])
        #expect(record.phaseDurations(now: 1_700_000_000_400).map(\.millis) == [100, 300], "preparing, then moving until now")
        let done = try record.moved(to: .done, at: 1_700_000_000_250)
        #expect(done.phaseDurations(now: 1_700_000_009_999).map { "\($0.phase) \($0.millis)" } == ["preparing 100", "moving 150"])
        record.versionBound = 991
        record.progress = 0.25
        record.objectsMoved = 12
        record.bytesMoved = 3400
        record.bucketCount = 1024
        record.bucketsReplayed = 256
        record.pullBatches = 9
        record.throttleBytesPerSecond = 2_500_000
        record.reversedBy = MigrationID(43)
        record.reverseOf = MigrationID(41)
        record.finishing = true
        record.lastError = "line one\nline two"
        let decoded = try #require(RecordCodec.decode(RecordCodec.encode(record)))
        var expected = record
        expected.lastError = "line one line two"
        #expect(decoded == expected)
        var blank = MigrationRecord(id: MigrationID(1), tablet: Tablet(tableID: 1), source: ServerID(1),
                                    destination: ServerID(2), strategy: .fulva)
        blank.versionBound = nil
        #expect(RecordCodec.decode(RecordCodec.encode(blank)) == blank)
        #expect(RecordCodec.decode(Array("id=1\nphase=moving\n".utf8)) == nil, "an incomplete record is refused")
    }
}

/// A record store in memory, refusing what FulvaCore refuses.
final class MemoryRecords: MigrationRecordSink {
    var records: [MigrationID: MigrationRecord] = [:]
    func update(_ id: MigrationID, _ change: (inout MigrationRecord) throws -> Void) throws {
        guard var record = records[id] else { return }
        try change(&record)
        record.revision += 1
        records[id] = record
    }
}

/// A host whose source answers at once and never fails; hooks let a test
/// act at ownership and at the finish, and make pulls report a cancel.
final class InstantHost: MigrationHost {
    var ownershipTaken = false
    var abandoned = false
    var calls: [String] = []
    var whenOwning: () -> Void = {}
    var whenFinishing: () -> Void = {}
    /// Pulls answer as the C++ host does once a reverse run froze the tablet.
    var pullsReportACancel = false
    func log(_ level: LogLevel, _ message: String) {}
    func prepareSource(_ request: MigrationRequest) throws(HostError) -> PreparedSource {
        calls.append("prepare")
        return PreparedSource(versionBound: 100, bucketCount: 64, partitions: request.partitions, completionRecords: 0)
    }
    func takeOwnership(_ request: MigrationRequest, prepared: PreparedSource) throws(HostError) {
        calls.append("own")
        ownershipTaken = true
        whenOwning()
    }
    func pull(_ request: MigrationRequest, _ batches: [PullBatch]) -> [PullOutcome] {
        if pullsReportACancel {
            calls.append("pull")
            return batches.map { _ in .failed(status: HostError.cancelled) }
        }
        return batches.map { .replayed(objects: 1, bytes: 10, resumeBucket: $0.buckets.upperBound) }
    }
    func publishWatermark(_ id: MigrationID, partition: Int, bucket: UInt64) {}
    func finish(_ request: MigrationRequest) throws(HostError) {
        calls.append("finish")
        whenFinishing()
    }
    func abandon(_ request: MigrationRequest) throws(HostError) {
        calls.append("abandon")
        abandoned = true
    }
}

@Suite struct ManagerRecordTests {
    func request(_ id: UInt64) -> MigrationRequest {
        MigrationRequest(id: MigrationID(id), tablet: Tablet(tableID: 3), source: ServerID(1), destination: ServerID(2),
                         strategy: .fulva, partitions: 4)
    }

    @Test func theDestinationKeepsTheRecordCurrent() throws {
        let records = MemoryRecords()
        records.records[MigrationID(1)] = request(1).record(createdAt: 0)
        let host = InstantHost()
        let manager = MigrationManager(host: host, serverID: ServerID(2), records: records)
        try manager.accept(request(1))
        let final = try #require(manager.drive(MigrationID(1)))
        #expect(final.phase == .done)
        let stored = try #require(records.records[MigrationID(1)])
        #expect(stored.phase == .done && stored.progress == 1 && stored.versionBound == 100
                && stored.bucketsReplayed == 64 && stored.objectsMoved > 0)
    }

    /// A record cancelled while the source prepared: the conditional move
    /// to "moving" fails, the destination never takes the tablet, and the
    /// source is told to unfreeze.
    @Test func aCancelledRecordStopsTheMigrationBeforeOwnership() throws {
        let records = MemoryRecords()
        var cancelled = request(2).record(createdAt: 0)
        cancelled = try cancelled.moved(to: .cancelled, at: 1)
        records.records[MigrationID(2)] = cancelled
        let host = InstantHost()
        let manager = MigrationManager(host: host, serverID: ServerID(2), records: records)
        try manager.accept(request(2))
        let final = try #require(manager.drive(MigrationID(2)))
        #expect(final.phase == .cancelled)
        #expect(!host.ownershipTaken && host.abandoned)
        #expect(records.records[MigrationID(2)]?.phase == .cancelled, "the cancel stands")
    }

    /// A cancel after Prepare: the host reports it from a pull (the reverse
    /// run froze this copy); the run stops without undoing anything, since
    /// the reverse run now has the tablet.
    @Test func aCancelAfterPrepareStopsTheRunAndLeavesTheTabletToTheReverseRun() throws {
        let records = MemoryRecords()
        records.records[MigrationID(3)] = request(3).record(createdAt: 0)
        let host = InstantHost()
        host.whenOwning = { records.records[MigrationID(3)] = try? records.records[MigrationID(3)]!.moved(to: .cancelling, at: 5) }
        host.pullsReportACancel = true
        let manager = MigrationManager(host: host, serverID: ServerID(2), records: records)
        try manager.accept(request(3))
        let final = try #require(manager.drive(MigrationID(3)))
        #expect(final.phase == .cancelled, "over here (a new migration of the tablet may come)")
        #expect(host.calls == ["prepare", "own", "pull"], "no abandon, no finish")
        #expect(records.records[MigrationID(3)]?.phase == .cancelling)
    }

    /// A cancel that reaches the record while the last pulls run: done
    /// cannot be recorded, so the source is not told to drop its copy.
    @Test func aCancelThatBeatsTheFinishKeepsTheSourcesCopy() throws {
        let records = MemoryRecords()
        records.records[MigrationID(4)] = request(4).record(createdAt: 0)
        let host = InstantHost()
        host.whenOwning = { records.records[MigrationID(4)] = try? records.records[MigrationID(4)]!.moved(to: .cancelling, at: 5) }
        let manager = MigrationManager(host: host, serverID: ServerID(2), records: records)
        try manager.accept(request(4))
        let final = try #require(manager.drive(MigrationID(4)))
        #expect(final.phase == .cancelled)
        #expect(!host.calls.contains("finish") && !host.calls.contains("abandon"))
        #expect(records.records[MigrationID(4)]?.phase == .cancelling)
    }

    /// The record says "finishing" when the source is told to drop its
    /// copy, and done only after: a cancel is refused from "finishing" on,
    /// so it never meets a dropped copy.
    @Test func finishingIsRecordedBeforeTheDropAndRefusesACancel() throws {
        let records = MemoryRecords()
        records.records[MigrationID(7)] = request(7).record(createdAt: 0)
        let host = InstantHost()
        var recordAtFinish: MigrationRecord?
        host.whenFinishing = { recordAtFinish = records.records[MigrationID(7)] }
        let manager = MigrationManager(host: host, serverID: ServerID(2), records: records)
        try manager.accept(request(7))
        #expect(try #require(manager.drive(MigrationID(7))).phase == .done)
        let atFinish = try #require(recordAtFinish)
        #expect(atFinish.phase == .moving && atFinish.finishing)
        #expect(throws: FulvaError.self) { try atFinish.cancelAction() }
        var moving = try request(8).record(createdAt: 0).moved(to: .moving, at: 1)
        #expect(try moving.cancelAction() == .reverse)
        moving.finishing = true
        #expect(throws: FulvaError.self) { try moving.cancelAction() }
    }

    /// The reverse run's end is the cancelled migration's end.
    @Test func theReverseRunsEndMarksTheCancelledMigrationCancelled() throws {
        let records = MemoryRecords()
        var forward = request(5).record(createdAt: 0)
        forward = try forward.moved(to: .moving, at: 1).moved(to: .cancelling, at: 2)
        forward.reversedBy = MigrationID(6)
        records.records[MigrationID(5)] = forward
        let reverse = MigrationRequest.reverse(of: forward, id: MigrationID(6))
        #expect(reverse.source == forward.destination && reverse.destination == forward.source
                && reverse.reverses == MigrationID(5) && reverse.strategy == .fulva)
        records.records[MigrationID(6)] = reverse.record(createdAt: 3)
        #expect(records.records[MigrationID(6)]?.reverseOf == MigrationID(5))
        let host = InstantHost()
        let manager = MigrationManager(host: host, serverID: forward.source, records: records)
        try manager.accept(reverse)
        let final = try #require(manager.drive(MigrationID(6)))
        #expect(final.phase == .done)
        #expect(records.records[MigrationID(5)]?.phase == .cancelled)
        #expect(records.records[MigrationID(6)]?.phase == .done)
    }
}
