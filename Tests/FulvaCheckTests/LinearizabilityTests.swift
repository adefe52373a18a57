import FulvaCheck
import Testing

/// Anomalies a broken migration produces; each must be refused.
@Suite struct NonLinearizableHistories {
    @Test func staleRead() throws {
        let result = checkKey([
            op(1, write(1), written(1), 0, 10),
            op(2, write(2), written(2), 20, 30),
            op(3, .read, found(1, 1), 40, 50),  // write 2 completed before this began
        ])
        let violation = try #require(violationOf(result))
        #expect(violation.longestPrefix.map(\.id) == [1, 2])
        #expect(violation.culprits.map(\.operation.id) == [3])
        #expect(violation.description.contains("read found 1 @ v1, but the key holds 2 @ v2"))
    }

    @Test func lostUpdate() {
        let result = checkKey([
            op(1, increment(1), incremented(1, 2), 0, 10),
            op(2, increment(1), incremented(2, 3), 5, 15),
            op(3, .read, found(1, 2), 20, 30),  // only one of the two increments
        ], initial: RecordedInitialObject(value: 0, version: 1))
        #expect(!result.isLinearizable)
    }

    @Test func resurrectedDelete() {
        let result = checkKey([
            op(1, write(5), written(1), 0, 10),
            op(2, remove, .removed(version: 1), 20, 30),
            op(3, .read, found(5, 1), 40, 50),
        ])
        #expect(!result.isLinearizable)
    }

    @Test func incrementAppliedTwice() {
        // A retried increment executed again despite its RPC id.
        let result = checkKey([
            op(1, increment(5), incremented(5, 2), 0, 10),
            op(2, .read, found(10, 3), 20, 30),
        ], initial: RecordedInitialObject(value: 0, version: 1))
        #expect(!result.isLinearizable)
    }

    @Test func conditionalWriteThatShouldHaveFailed() {
        let result = checkKey([
            op(1, write(1), written(1), 0, 10),
            op(2, write(2), written(2), 20, 30),
            op(3, write(3, RecordedRejectRules(givenVersion: 1, versionNeGiven: true)), written(3), 40, 50),
        ])
        let violation = violationOf(result)
        #expect(violation?.culprits.first?.reason.contains("refuse it on 2 @ v2") == true)
    }

    @Test func versionsMustGrowAcrossRemoves() {
        let result = checkKey([
            op(1, write(1), written(4), 0, 10),
            op(2, remove, .removed(version: 4), 20, 30),
            op(3, write(2), written(3), 40, 50),  // RAMCloud never reuses a version of a key
        ])
        #expect(!result.isLinearizable)
    }

    @Test func rejectionWithoutCause() {
        let result = checkKey([
            op(1, write(1), written(1), 0, 10),
            op(2, write(2, RecordedRejectRules(doesntExist: true)), .rejected(.objectDoesntExist), 20, 30),
        ])
        #expect(!result.isLinearizable)
    }

    @Test func wholeHistoryNamesOnlyTheOffendingKeys() {
        let history = History(operations: [
            op(1, write(1), written(1), 0, 10, key: "b"),
            op(2, .read, .absent, 20, 30, key: "b"),
            op(3, write(7), written(1), 0, 10, key: "a"),
            op(4, .read, found(7, 1), 20, 30, key: "a"),
            op(5, .read, found(9, 1), 20, 30, key: "c"),
        ])
        let result = LinearizabilityChecker.check(history)
        #expect(result.offendingKeys == ["b", "c"])
        #expect(result.keysChecked == 3 && result.operationsChecked == 5)
        #expect(result.description.hasPrefix("NOT linearizable: 2 of 3 keys"))
        #expect(result == LinearizabilityChecker.check(history), "the verdict is deterministic")
    }
}

/// Histories with many overlapping operations whose valid orders differ from
/// invocation order; each must be accepted.
@Suite struct LinearizableHistories {
    @Test func versionsDictateTheOrderOfConcurrentWrites() {
        // Eight fully concurrent writes; their versions force an order that is
        // the reverse of their invocation order, and reads pin it further.
        var ops = (0..<8).map { i in op(i, write(Int64(100 + i)), written(UInt64(8 - i)), Int64(i), 1000) }
        ops += (0..<8).map { i in op(10 + i, .read, found(Int64(100 + i), UInt64(8 - i)), Int64(20 + i), 1000) }
        ops.append(op(30, .read, found(100, 8), 1010, 1020))
        let result = checkKey(ops)
        #expect(result == .linearizable(order: [7, 17, 6, 16, 5, 15, 4, 14, 3, 13, 2, 12, 1, 11, 0, 10, 30]))
    }

    @Test func concurrentIncrementsInTheOnlyPossibleOrder() {
        let ops = [
            op(1, increment(1), incremented(6, 3), 0, 100),
            op(2, increment(2), incremented(5, 2), 10, 90),  // invoked later, took effect first
            op(3, .read, found(5, 2), 50, 60),
            op(4, increment(100), nil, 20),  // no reply, never took effect
            op(5, .read, found(6, 3), 110, 120),
        ]
        #expect(checkKey(ops, initial: RecordedInitialObject(value: 3, version: 1)).isLinearizable)
    }

    @Test func failedOperationsThatDidAndDidNotTakeEffect() {
        let ops = [
            op(1, write(1), written(1), 0, 10),
            op(2, write(77), nil, 5),  // took effect late, seen by 6
            op(3, remove, nil, 12),  // took effect, seen by 4
            op(4, .read, .absent, 20, 30),
            op(5, write(2), written(5), 40, 50),
            op(9, increment(1000), nil, 41),  // never took effect
            op(6, .read, found(77, 9), 60, 70),  // learns the lost write's version
            op(7, write(78, RecordedRejectRules(givenVersion: 9, versionNeGiven: true)), written(10), 80, 90),
            op(8, .read, found(78, 10), 100, 110),
        ]
        // #9 may or may not appear (before #5 overwrites it); the rest is forced.
        guard case .linearizable(let order) = checkKey(ops) else { Issue.record("not linearizable"); return }
        #expect(order.filter { $0 != 9 } == [1, 3, 4, 5, 2, 6, 7, 8])
    }

    @Test func heavyOverlapOfReadsWritesAndRemoves() {
        // Everything overlaps everything; reads must interleave with the
        // writes and the remove in one particular way.
        let ops = [
            op(1, write(1), written(3), 0, 100),
            op(2, write(2), written(5), 1, 100),
            op(3, remove, .removed(version: 3), 2, 100),
            op(4, .read, .absent, 3, 100),
            op(5, .read, found(1, 3), 4, 100),
            op(6, .read, found(2, 5), 5, 100),
            op(7, write(9, RecordedRejectRules(exists: true)), .rejected(.objectExists), 6, 100),
            op(8, write(8, RecordedRejectRules(doesntExist: true)), .rejected(.objectDoesntExist), 7, 100),
            op(9, increment(1), incremented(3, 6), 8, 100),
            op(10, .read, found(3, 6), 101, 110),
        ]
        let result = checkKey(ops)
        #expect(result.isLinearizable)
        if case .linearizable(let order) = result {
            #expect(order.firstIndex(of: 5)! < order.firstIndex(of: 3)!)
            #expect(order.firstIndex(of: 4)! < order.firstIndex(of: 2)!)
        }
    }

    @Test func removeOfAnAbsentKeyAnswersVersionZero() {
        let ops = [
            op(1, remove, .removed(version: 0), 0, 10),
            op(2, remove, .removed(version: nil), 20, 30),
            op(3, .read, .absent, 40, 50),
        ]
        #expect(checkKey(ops).isLinearizable)
        #expect(!checkKey([op(1, remove, .removed(version: 4), 0, 10)]).isLinearizable)
    }

    @Test func incrementCreatesAnAbsentObject() {
        let ops = [
            op(1, increment(-4), incremented(-4, 1), 0, 10),
            op(2, .read, found(-4, 1), 20, 30),
        ]
        #expect(checkKey(ops).isLinearizable)
    }
}

/// A write without reply leaves its version unknown; later observations
/// must fix it consistently.
@Suite struct UnknownVersions {
    let lostWrite = op(1, write(42), nil, 0)

    @Test func aReadFixesTheVersion() {
        #expect(checkKey([lostWrite, op(2, .read, found(42, 7), 10, 20), op(3, .read, found(42, 7), 30, 40)])
            .isLinearizable)
        #expect(!checkKey([lostWrite, op(2, .read, found(42, 7), 10, 20), op(3, .read, found(42, 8), 30, 40)])
            .isLinearizable)
    }

    @Test func aVersionRejectionBoundsTheVersion() {
        // Rejected by versionLeGiven 10: the lost write's version is ≤ 10.
        let probe = op(2, write(0, RecordedRejectRules(givenVersion: 10, versionLeGiven: true)),
                       .rejected(.wrongVersion), 10, 20)
        #expect(checkKey([lostWrite, probe, op(3, .read, found(42, 9), 30, 40)]).isLinearizable)
        #expect(!checkKey([lostWrite, probe, op(3, .read, found(42, 11), 30, 40)]).isLinearizable)
    }

    @Test func anAcceptedVersionCheckFixesTheVersion() {
        // doesntExist proves the lost write happened; versionNeGiven 5
        // accepted proves its version was 5, so the new one must exceed 5.
        let rules = RecordedRejectRules(givenVersion: 5, doesntExist: true, versionNeGiven: true)
        #expect(checkKey([lostWrite, op(2, write(43, rules), written(6), 10, 20)]).isLinearizable)
        #expect(!checkKey([lostWrite, op(2, write(43, rules), written(4), 10, 20)]).isLinearizable)
    }

    @Test func unknownVersionsStillGrow() {
        let initial = RecordedInitialObject(value: 1, version: 5)
        #expect(!checkKey([lostWrite, op(2, .read, found(42, 5), 10, 20)], initial: initial).isLinearizable)
        #expect(checkKey([lostWrite, op(2, .read, found(42, 6), 10, 20)], initial: initial).isLinearizable)
    }
}

func violationOf(_ result: KeyCheckResult) -> KeyViolation? {
    if case .notLinearizable(let violation) = result { return violation }
    return nil
}
