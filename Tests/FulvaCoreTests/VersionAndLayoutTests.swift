import FulvaCore
import Testing

@Suite struct ReplayRuleTests {
    @Test func higherVersionWins() {
        #expect(ReplayRule.replaces(.object(5), over: .object(4)))
        #expect(!ReplayRule.replaces(.object(4), over: .object(5)))
        #expect(!ReplayRule.replaces(.object(5), over: .object(5)))
        #expect(ReplayRule.replaces(.object(1), over: nil))
    }

    @Test func tombstoneBeatsObjectsUpToItsVersion() {
        #expect(ReplayRule.replaces(.tombstone(5), over: .object(5)))
        #expect(ReplayRule.replaces(.tombstone(5), over: .object(3)))
        #expect(!ReplayRule.replaces(.tombstone(5), over: .object(6)))
        // A replayed (older) object never brings a removed key back.
        #expect(!ReplayRule.replaces(.object(5), over: .tombstone(5)))
        #expect(!ReplayRule.replaces(.object(4), over: .tombstone(9)))
        #expect(ReplayRule.replaces(.object(10), over: .tombstone(9)))
    }
}

@Suite struct VersionRuleTests {
    @Test func boundCoversOverwritesThatSafeVersionMisses() {
        // An overwrite assigned version 90 while the segment safeVersion is 40.
        #expect(VersionRule.versionBound(safeVersion: 40, highestVersionInTablet: 90) == 91)
        #expect(VersionRule.versionBound(safeVersion: 40, highestVersionInTablet: 12) == 40)
        #expect(VersionRule.versionBound(safeVersion: 40, highestVersionInTablet: 90,
                                         faults: .boundFromSafeVersionOnly) == 40)
    }

    @Test func writesAtATargetGetAtLeastTheFloor() {
        #expect(VersionRule.nextVersion(existing: .object(7), safeVersion: 3, floor: nil) == 8)
        #expect(VersionRule.nextVersion(existing: nil, safeVersion: 3, floor: nil) == 3)
        #expect(VersionRule.nextVersion(existing: .object(7), safeVersion: 3, floor: 50) == 50)
        #expect(VersionRule.nextVersion(existing: .tombstone(70), safeVersion: 3, floor: 50) == 71)
    }

    @Test func rejectRulesAsRAMCloudEvaluatesThem() {
        #expect(RejectRules(doesntExist: true).evaluate(currentVersion: nil) == .objectDoesntExist)
        #expect(RejectRules(doesntExist: true).evaluate(currentVersion: 3) == nil)
        #expect(RejectRules(exists: true).evaluate(currentVersion: 3) == .objectExists)
        #expect(RejectRules(exists: true).evaluate(currentVersion: nil) == nil)
        #expect(RejectRules(givenVersion: 3, versionLeGiven: true).evaluate(currentVersion: 3) == .wrongVersion)
        #expect(RejectRules(givenVersion: 3, versionLeGiven: true).evaluate(currentVersion: 4) == nil)
        #expect(RejectRules(givenVersion: 3, versionNeGiven: true).evaluate(currentVersion: 4) == .wrongVersion)
        #expect(RejectRules(givenVersion: 4, versionNeGiven: true).evaluate(currentVersion: 4) == nil)
        // Version rules do not apply to an absent object.
        #expect(RejectRules(givenVersion: 4, versionNeGiven: true).evaluate(currentVersion: nil) == nil)
    }
}

@Suite struct LayoutTests {
    @Test func bucketMatchesRAMCloudFindBucketIndex() throws {
        let layout = try HashTableLayout(bucketCount: 1 << 20, partitionCount: 8)
        // HashTable::findBucketIndex: (hash & 0x0000ffffffffffff) & (numBuckets - 1)
        for hash: UInt64 in [0, 1, 0xffff_ffff_ffff_ffff, 0x1234_5678_9abc_def0, 0xabcd_0000_000f_ffff] {
            #expect(layout.bucket(of: hash) == (hash & 0x0000_ffff_ffff_ffff) & ((1 << 20) - 1))
        }
    }

    @Test func partitionsTileTheBuckets() throws {
        for (buckets, partitions) in [(16, 3), (1024, 7), (8, 8), (1 << 16, 1)] as [(UInt64, Int)] {
            let layout = try HashTableLayout(bucketCount: buckets, partitionCount: partitions)
            var next: UInt64 = 0
            for p in 0..<partitions {
                let range = layout.buckets(ofPartition: p)
                #expect(range.lowerBound == next)
                #expect(!range.isEmpty)
                for b in [range.lowerBound, range.upperBound - 1] { #expect(layout.partition(ofBucket: b) == p) }
                next = range.upperBound
            }
            #expect(next == buckets)
        }
    }

    @Test func badLayoutsAreTypedErrors() {
        #expect(throws: FulvaError.self) { try HashTableLayout(bucketCount: 12, partitionCount: 2) }
        #expect(throws: FulvaError.self) { try HashTableLayout(bucketCount: 8, partitionCount: 9) }
        #expect(throws: FulvaError.self) { try HashTableLayout(bucketCount: 8, partitionCount: 0) }
        #expect(throws: FulvaError.self) { try HashTableLayout(bucketCount: 1 << 40, partitionCount: 1) }
    }
}

@Suite struct PullScheduleTests {
    @Test func watermarkMovesOnlyOverReplayedPrefix() throws {
        let layout = try HashTableLayout(bucketCount: 16, partitionCount: 1)
        var schedule = PullSchedule(layout: layout, bucketsPerBatch: 4, pipelineDepth: 4)
        let batches = schedule.nextPulls()
        #expect(batches.map(\.buckets) == [0..<4, 4..<8, 8..<12, 12..<16])
        // Replies and replays out of order.
        let accepted1 = schedule.received(batches[2])
        #expect(accepted1)
        schedule.replayed(batches[2])
        #expect(schedule.watermarks.buckets == [0])
        let accepted2 = schedule.received(batches[0])
        #expect(accepted2)
        #expect(schedule.watermarks.buckets == [0], "received is not replayed")
        schedule.replayed(batches[0])
        #expect(schedule.watermarks.buckets == [4])
        let accepted3 = schedule.received(batches[1])
        #expect(accepted3)
        schedule.replayed(batches[1])
        #expect(schedule.watermarks.buckets == [12])
        let duplicate = schedule.received(batches[1])
        #expect(!duplicate, "a duplicate reply is refused")
        let accepted4 = schedule.received(batches[3])
        #expect(accepted4)
        schedule.replayed(batches[3])
        #expect(schedule.isComplete)
    }

    @Test func watermarkOnReceiptFaultAdvancesEarly() throws {
        let layout = try HashTableLayout(bucketCount: 8, partitionCount: 1)
        var schedule = PullSchedule(layout: layout, bucketsPerBatch: 4, pipelineDepth: 2, faults: .watermarkOnReceipt)
        let batches = schedule.nextPulls()
        schedule.received(batches[0])
        #expect(schedule.watermarks.buckets == [4])
    }

    @Test func cutRepliesAndLostPullsAreRetried() throws {
        let layout = try HashTableLayout(bucketCount: 8, partitionCount: 2)
        var schedule = PullSchedule(layout: layout, bucketsPerBatch: 4, pipelineDepth: 1)
        let first = schedule.nextPulls()
        #expect(first.count == 2)
        #expect(schedule.nextPulls().isEmpty, "pipeline depth 1")
        // Partition 0's reply ran out of budget at bucket 2.
        schedule.received(first[0], resumeAt: 2)
        schedule.replayed(PullBatch(partition: 0, buckets: 0..<2))
        #expect(schedule.watermarks.buckets[0] == 2)
        // Partition 1's pull got no answer.
        schedule.failed(first[1])
        let second = schedule.nextPulls()
        #expect(Set(second) == [PullBatch(partition: 0, buckets: 2..<4), PullBatch(partition: 1, buckets: 4..<8)])
    }
}
