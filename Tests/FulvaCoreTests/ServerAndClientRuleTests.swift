import FulvaCore
import Testing

let tablet = Tablet(tableID: 7, range: try! KeyHashRange(start: 0, end: 1 << 62))
let S = ServerID(1), D = ServerID(2)
let layout = try! HashTableLayout(bucketCount: 16, partitionCount: 2)

func movingDestination(strategy: Strategy = .fulva, faults: ProtocolFaults = .none,
                       reverse: ReverseRun? = nil) throws -> DestinationMigration {
    var d = try DestinationMigration(id: MigrationID(9), tablet: tablet, source: S, destination: D,
                                     strategy: strategy, reverse: reverse,
                                     tuning: .init(partitions: 2, bucketsPerBatch: 4, pipelineDepth: 2), faults: faults)
    d.prepared(PrepareResult(versionBound: 100, layout: layout))
    d.tookOwnership()
    return d
}

/// A key hash in bucket `b` of `layout`.
func hash(inBucket b: UInt64) -> KeyHash { b }

@Suite struct BadInputTests {
    @Test func rangesAndStrategies() throws {
        #expect(throws: FulvaError.invertedKeyHashRange(start: 5, end: 4)) { try KeyHashRange(start: 5, end: 4) }
        #expect(throws: FulvaError.emptyKeyHashRange) { try KeyHashRange(3..<3) }
        #expect(throws: FulvaError.unknownStrategy("zippy")) { try Strategy(parsing: "zippy") }
        #expect(try Strategy(parsing: "Rocksteady") == .rocksteady)
    }

    @Test func migrationRequests() throws {
        #expect(throws: FulvaError.sameSourceAndDestination(S)) {
            try MigrationRequest.validate(tablet: tablet, source: S, destination: S, active: [])
        }
        var busy = MigrationRecord(id: MigrationID(3), tablet: tablet, source: S, destination: D, strategy: .fulva)
        let half = Tablet(tableID: 7, range: try KeyHashRange(start: 1 << 61, end: 1 << 63))
        #expect(throws: FulvaError.tabletBusy(half, MigrationID(3))) {
            try MigrationRequest.validate(tablet: half, source: S, destination: D, active: [busy])
        }
        busy.phase = .done
        try MigrationRequest.validate(tablet: half, source: S, destination: D, active: [busy])
        let otherTable = Tablet(tableID: 8)
        busy.phase = .moving
        try MigrationRequest.validate(tablet: otherTable, source: S, destination: D, active: [busy])
        #expect(throws: FulvaError.self) {
            _ = try DestinationMigration(id: MigrationID(1), tablet: tablet, source: S, destination: S, strategy: .fulva)
        }
    }

    @Test func theActiveLimitAndRacingStartsAreSettledByID() throws {
        func record(_ id: UInt64, table: UInt64, phase: MigrationPhase = .moving) -> MigrationRecord {
            var r = MigrationRecord(id: MigrationID(id), tablet: Tablet(tableID: table), source: S, destination: D,
                                    strategy: .fulva)
            r.phase = phase
            return r
        }
        let running = [record(1, table: 1), record(2, table: 2), record(3, table: 3, phase: .done)]
        #expect(throws: FulvaError.tooManyMigrations(running: [MigrationID(1), MigrationID(2)], limit: 2)) {
            try MigrationRequest.validate(tablet: Tablet(tableID: 4), source: S, destination: D, active: running, limit: 2)
        }
        try MigrationRequest.validate(tablet: Tablet(tableID: 4), source: S, destination: D, active: running, limit: 3)
        // Two starts over table 5 both passed validate; the lower id stands.
        let first = record(7, table: 5, phase: .preparing), second = record(8, table: 5, phase: .preparing)
        try MigrationRequest.settle(first, among: running + [first, second])
        #expect(throws: FulvaError.tabletBusy(Tablet(tableID: 5), MigrationID(7))) {
            try MigrationRequest.settle(second, among: running + [first, second])
        }
        // Racing starts of other tablets: the limit counts only earlier ones.
        let third = record(9, table: 6, phase: .preparing)
        try MigrationRequest.settle(first, among: running + [first, third], limit: 3)
        #expect(throws: FulvaError.self) { try MigrationRequest.settle(third, among: running + [first, third], limit: 3) }
    }

    @Test func aDeadServerIsTheFailureCause() throws {
        var record = try MigrationRecord(id: MigrationID(3), tablet: tablet, source: S, destination: D, strategy: .fulva)
            .moved(to: .moving, at: 1)
        record.progress = 0.4
        #expect(record.failureCause(liveServers: [S, D]) == nil)
        let deadDestination = try #require(record.failureCause(liveServers: [S, ServerID(9)]))
        #expect(deadDestination.hasPrefix("destination \(D) crashed (moving, 40% moved)") && deadDestination.contains("frozen copy"))
        let deadSource = try #require(record.failureCause(liveServers: [D]))
        #expect(deadSource.hasPrefix("source \(S) crashed (moving, 40% moved)") && deadSource.contains("60% of its buckets"))
        let done = try record.moved(to: .done, at: 2)
        #expect(done.failureCause(liveServers: []) == nil, "an ended migration has no cause to fail")
    }

    @Test func theThrottleKeepsTheRateAndTakesANewOne() {
        var throttle = Throttle(bytesPerSecond: 1_000_000, nowMicros: 0)
        // 100 KB at 1 MB/s is due at 100 ms; moved at 10 ms: pause 90 ms.
        #expect(throttle.pause(afterMoving: 100_000, nowMicros: 10_000) == 90_000)
        // Behind schedule: no pause.
        #expect(throttle.pause(afterMoving: 100_000, nowMicros: 300_000) == 0)
        // Far ahead: one pause is at most the longest.
        #expect(throttle.pause(afterMoving: 10_000_000, nowMicros: 300_000) == throttle.longestPauseMicros)
        // A new rate counts from now, without the old debt.
        throttle.set(bytesPerSecond: 2_000_000, nowMicros: 400_000)
        #expect(throttle.pause(afterMoving: 200_000, nowMicros: 400_000) == 100_000)
        throttle.set(bytesPerSecond: 0, nowMicros: 500_000)
        #expect(throttle.pause(afterMoving: 1 << 40, nowMicros: 500_000) == 0, "0 is no limit")
    }

    @Test func recordTransitionsAndCancel() throws {
        let record = MigrationRecord(id: MigrationID(4), tablet: tablet, source: S, destination: D, strategy: .fulva)
        #expect(try record.cancelAction() == .releaseSource)
        let moving = try record.moved(to: .moving, at: 1)
        #expect(try moving.cancelAction() == .reverse)
        #expect(throws: FulvaError.illegalTransition(MigrationID(4), from: .moving, to: .preparing)) {
            try moving.moved(to: .preparing, at: 2)
        }
        let done = try moving.moved(to: .done, at: 3)
        #expect(throws: FulvaError.cancelTooLate(MigrationID(4), .done)) { try done.cancelAction() }
        #expect(throws: FulvaError.self) { try done.moved(to: .cancelled, at: 4) }
        var sourceDriven = MigrationRecord(id: MigrationID(5), tablet: tablet, source: S, destination: D, strategy: .source)
        sourceDriven.phase = .moving
        #expect(throws: FulvaError.cancelTooLate(MigrationID(5), .moving)) { try sourceDriven.cancelAction() }
    }

    @Test func malformedTagsAreErrors() {
        #expect(throws: FulvaError.self) { try MigrationTag(decoding: []) }
        #expect(throws: FulvaError.self) { try MigrationTag(decoding: [9, 0, 0, 0, 0, 0, 0, 0, 0]) }
        var bytes = MigrationTag(migration: MigrationID(1), role: .destination, epoch: 3).encoded()
        bytes.append(0)
        #expect(throws: FulvaError.malformedTag("1 trailing bytes")) { try MigrationTag(decoding: bytes) }
        bytes.removeLast(3)
        #expect(throws: FulvaError.self) { try MigrationTag(decoding: bytes) }
    }
}

@Suite struct DestinationRuleTests {
    @Test func admissionWhileMoving() throws {
        let d = try movingDestination()
        let unmoved = hash(inBucket: 3)
        #expect(d.admit(.blindWrite, keyHash: unmoved, local: nil, fetched: false) == .execute)
        #expect(d.admit(.blindRemove, keyHash: unmoved, local: nil, fetched: false) == .execute)
        #expect(d.admit(.read, keyHash: unmoved, local: nil, fetched: false) == .execute)
        #expect(d.admit(.readModifyWrite, keyHash: unmoved, local: nil, fetched: false) == .priorityFetchFirst)
        #expect(d.admit(.readModifyWrite, keyHash: unmoved, local: nil, fetched: true) == .execute)
        #expect(d.admit(.readModifyWrite, keyHash: unmoved, local: .object(101), fetched: false) == .execute)
        #expect(d.admit(.enumeration, keyHash: unmoved, local: nil, fetched: false) == .refuse)
        let r = try movingDestination(strategy: .rocksteady)
        #expect(r.admit(.read, keyHash: unmoved, local: nil, fetched: false) == .retryAfterPriorityFetch)
        #expect(r.admit(.read, keyHash: unmoved, local: .object(3), fetched: false) == .execute)
    }

    @Test func preparingDestinationRetriesUntilItOwnsTheTablet() throws {
        var d = try DestinationMigration(id: MigrationID(9), tablet: tablet, source: S, destination: D, strategy: .fulva)
        #expect(d.admit(.blindWrite, keyHash: 1, local: nil, fetched: false) == .retryLater)
        d.prepared(PrepareResult(versionBound: 100, layout: layout))
        #expect(d.admit(.blindWrite, keyHash: 1, local: nil, fetched: false) == .retryLater, "cancel may still win")
        d.tookOwnership()
        #expect(d.admit(.blindWrite, keyHash: 1, local: nil, fetched: false) == .execute)
        #expect(d.versionForWrite(existing: nil, safeVersion: 7) == 100)
    }

    @Test func readAnswersKeepTheFourCasesApart() throws {
        var d = try movingDestination()
        let unmoved = hash(inBucket: 1)
        #expect(d.answerRead(keyHash: unmoved, local: nil, fetched: false) == .notYetMoved(stale: nil))
        #expect(d.answerRead(keyHash: unmoved, local: nil, fetched: true) == .absent)
        #expect(d.answerRead(keyHash: unmoved, local: .object(120), fetched: false) == .object(120))
        #expect(d.answerRead(keyHash: unmoved, local: .tombstone(130), fetched: false) == .tombstone(130))
        // Replay partition 0's first batch: buckets 0..<4 become authoritative.
        let pulls = d.nextPulls()
        let first = try #require(pulls.first { $0.partition == 0 && $0.buckets.lowerBound == 0 })
        let arrived1 = d.pullArrived(first, resumeAt: nil)
        #expect(arrived1)
        #expect(d.answerRead(keyHash: unmoved, local: nil, fetched: false) == .notYetMoved(stale: nil),
                "arrived is not replayed")
        d.batchReplayed(first)
        #expect(d.answerRead(keyHash: unmoved, local: nil, fetched: false) == .absent)
        #expect(d.answerRead(keyHash: hash(inBucket: 5), local: nil, fetched: false) == .notYetMoved(stale: nil))
    }

    @Test func tombstoneFaultsChangeTheAnswers() throws {
        let miss = try movingDestination(faults: .tombstoneAnsweredAsMiss)
        #expect(miss.answerRead(keyHash: 1, local: .tombstone(130), fetched: false) == .notYetMoved(stale: nil))
        let drop = try movingDestination(faults: .removeDropsTombstone)
        #expect(drop.tombstoneForRemove(existing: .object(5), safeVersion: 1) == nil)
        let good = try movingDestination()
        #expect(good.tombstoneForRemove(existing: .object(5), safeVersion: 1) == .tombstone(100))
    }

    @Test func reverseRunDistrustsTheOldCopy() throws {
        let reverse = ReverseRun(forward: MigrationID(8), forwardBound: 60)
        let d = try movingDestination(reverse: reverse)
        #expect(d.answerRead(keyHash: 1, local: .object(50), fetched: false) == .notYetMoved(stale: .object(50)))
        #expect(d.answerRead(keyHash: 1, local: nil, fetched: false) == .notYetMoved(stale: .absent))
        #expect(d.answerRead(keyHash: 1, local: .object(61), fetched: false) == .object(61))
        #expect(d.admit(.readModifyWrite, keyHash: 1, local: .object(50), fetched: false) == .priorityFetchFirst)
        let trusting = try movingDestination(faults: .reverseTrustsOldEntries, reverse: reverse)
        #expect(trusting.answerRead(keyHash: 1, local: .object(50), fetched: false) == .object(50))
    }

    @Test func progressTagsCarryOnlyWhatChanged() throws {
        var d = try movingDestination()
        let fresh = try #require(d.tag(for: nil))
        #expect(fresh.identity?.layout == layout)
        #expect(fresh.watermarks.count == 2)
        let known = MigrationHint(migration: d.id, epoch: fresh.epoch)
        #expect(d.tag(for: known)?.watermarks.isEmpty == true)
        let batch = try #require(d.nextPulls().first)
        _ = d.pullArrived(batch, resumeAt: nil)
        d.batchReplayed(batch)
        let update = try #require(d.tag(for: known))
        #expect(update.identity == nil)
        #expect(update.watermarks == [.init(partition: UInt16(batch.partition), bucket: UInt32(batch.buckets.upperBound))])
        #expect(update.encodedSize < 30, "a few bytes per reply")
        #expect(try MigrationTag(decoding: update.encoded()) == update)
        #expect(try MigrationTag(decoding: fresh.encoded()) == fresh)
    }
}

@Suite struct SourceRuleTests {
    @Test func prepareWaitsForWritesAndTransactions() throws {
        var s = try SourceMigration(id: MigrationID(9), tablet: tablet, source: S, destination: D, strategy: .fulva,
                                    layout: layout)
        #expect(s.admit(.blindWrite) == .refuse)
        let writing = s.completePrepare(inFlightWrites: 1, preparedTransactions: 0, safeVersion: 5, highestVersionInTablet: 9)
        #expect(writing == nil)
        let deciding = s.completePrepare(inFlightWrites: 0, preparedTransactions: 2, safeVersion: 5, highestVersionInTablet: 9)
        #expect(deciding == nil)
        #expect(!s.tagsReads)
        let prepared = s.completePrepare(inFlightWrites: 0, preparedTransactions: 0, safeVersion: 5,
                                         highestVersionInTablet: 9)
        let result = try #require(prepared)
        #expect(result.versionBound == 10)
        #expect(s.tagsReads)
        #expect(s.admit(.read) == .execute)
        #expect(s.admit(.readModifyWrite) == .refuse)
        #expect(s.handsOver(completionRecordFor: 7, keyHash: 5))
        #expect(!s.handsOver(completionRecordFor: 8, keyHash: 5))
        let locked = try SourceMigration(id: MigrationID(9), tablet: tablet, source: S, destination: D,
                                         strategy: .rocksteady, layout: layout)
        #expect(locked.admit(.read) == .refuse)
    }
}

@Suite struct ClientRuleTests {
    func sourceTag() -> MigrationTag {
        MigrationTag(migration: MigrationID(9), role: .source,
                     identity: MigrationIdentity(source: S, destination: D, strategy: .fulva, tablet: tablet, layout: layout))
    }

    @Test func migratingReplyFromSourceStartsADualRead() {
        var table = ClientMigrationTable<String>()
        var read = ClientRead(tableID: 7, key: "k", keyHash: 3)
        let step2 = read.start(table: table, owner: S)
        #expect(step2 == .send([S]))
        let step3 = read.received(.object(5), tag: sourceTag(), from: S, table: &table)
        #expect(step3 == .send([D]))
        let untagged = read.received(.notYetMoved(stale: nil), tag: nil, from: D, table: &table)
        #expect(untagged == .refreshMap, "an untagged answer inside a migration round is not trusted")
        var faulty = ClientMigrationTable<String>(faults: .sourceReplyReturnedAlone)
        var alone = ClientRead(tableID: 7, key: "k", keyHash: 3)
        _ = alone.start(table: faulty, owner: S)
        let step4 = alone.received(.object(5), tag: sourceTag(), from: S, table: &faulty)
        #expect(step4 == .complete(from: S))
    }

    @Test func dualReadMerge() {
        #expect(ReadMerge.merge(source: .object(5), destination: .notYetMoved(stale: nil)) == .source)
        #expect(ReadMerge.merge(source: .object(5), destination: .object(5)) == .destination)
        #expect(ReadMerge.merge(source: .object(5), destination: .object(101)) == .destination)
        #expect(ReadMerge.merge(source: .object(5), destination: .tombstone(101)) == .absent)
        #expect(ReadMerge.merge(source: .object(5), destination: .absent) == .absent)
        #expect(ReadMerge.merge(source: .absent, destination: .notYetMoved(stale: nil)) == .absent)
        // Reverse run: the destination's old copy stands when the source cannot tell.
        #expect(ReadMerge.merge(source: .notYetMoved(stale: nil), destination: .notYetMoved(stale: .object(4))) == .destination)
        #expect(ReadMerge.merge(source: .object(70), destination: .notYetMoved(stale: .object(4))) == .source)
        #expect(ReadMerge.merge(source: .tombstone(70), destination: .notYetMoved(stale: .object(4))) == .absent)
        #expect(ReadMerge.merge(source: .notYetMoved(stale: nil), destination: .notYetMoved(stale: nil)) == .undecided)
    }

    @Test func notYetMovedIsReissuedWhenTheSourceDropped() {
        for faults in [ProtocolFaults.none, .notYetMovedTakenAsAbsent] {
            var table = ClientMigrationTable<String>(faults: faults)
            table.learn(sourceTag())
            var read = ClientRead(tableID: 7, key: "k", keyHash: 3)
            let step5 = read.start(table: table, owner: S)
            #expect(step5 == .send([S, D]))
            let waiting = read.received(.notYetMoved(stale: nil),
                                        tag: MigrationTag(migration: MigrationID(9), role: .destination, epoch: 2),
                                        from: D, table: &table)
            #expect(waiting == .wait)
            let step = read.unknownTablet(tag: nil, from: S, table: &table)
            #expect(step == (faults.isEmpty ? .send([D]) : .completeAbsent))
        }
    }

    @Test func writesGoToTheDestinationAndTheEndFlushesTheMap() {
        var table = ClientMigrationTable<String>()
        var write = ClientWrite<String>(tableID: 7, keyHash: 3)
        let step6 = write.start(table: table, owner: S)
        #expect(step6 == .send([S]))
        let step7 = write.unknownTablet(tag: sourceTag(), from: S, table: &table)
        #expect(step7 == .send([D]))
        let done = write.executed(tag: MigrationTag(migration: MigrationID(9), role: .ended), from: D, table: &table)
        #expect(done == .complete(from: D))
        let flushes = table.takeFlushes()
        #expect(flushes == [tablet])
        #expect(table.migration(tableID: 7, keyHash: 3) == nil)
        let learned = table.learn(sourceTag())
        #expect(!learned, "an ended migration is not learned again")
    }

    @Test func newerMigrationSupersedesOlder() {
        var table = ClientMigrationTable<String>()
        table.learn(sourceTag())
        var newer = sourceTag()
        newer.migration = MigrationID(12)
        newer.identity!.source = D
        newer.identity!.destination = S
        table.learn(newer)
        #expect(table.migration(tableID: 7, keyHash: 3)?.id == MigrationID(12))
        #expect(table.migrations.count == 1)
    }
}
