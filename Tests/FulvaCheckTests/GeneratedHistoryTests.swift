import FulvaCheck
import FulvaCore
import Foundation
import Testing

/// A linearizable history by construction: a sequential reference execution
/// of RAMCloud's semantics, one operation per linearization point, each
/// given a random interval around its point. Overlapping intervals hide the
/// order; the checker has to find one again.
struct ReferenceWorkload {
    struct Object { var value: Int64; var version: UInt64 }

    var random: SeededRandom
    var objects: [String: Object] = [:]
    /// Highest version each key ever had: RAMCloud never reuses one.
    var lastVersion: [String: UInt64] = [:]
    var nextValue: Int64 = 1_000

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    /// A version above every earlier one of `key`, sometimes well above (as
    /// after a migration raised the destination's version floor).
    mutating func bumpVersion(_ key: String) -> UInt64 {
        let version = lastVersion[key, default: 0] + (Int.random(in: 0..<20, using: &random) == 0 ? 1_000 : 1)
        lastVersion[key] = version
        return version
    }

    /// Executes `input` now; returns the output.
    mutating func execute(_ input: RecordedInput, on key: String) -> RecordedOutput {
        let current = objects[key]
        func rejection(_ rules: RecordedRejectRules?) -> RecordedRejection? {
            guard let rules else { return nil }
            guard let current else { return rules.doesntExist ? .objectDoesntExist : nil }
            if rules.exists { return .objectExists }
            if rules.versionLeGiven && current.version <= rules.givenVersion { return .wrongVersion }
            if rules.versionNeGiven && current.version != rules.givenVersion { return .wrongVersion }
            return nil
        }
        switch input {
        case .read:
            return current.map { .found(value: $0.value, version: $0.version) } ?? .absent
        case .write(let value, let rules):
            if let reason = rejection(rules) { return .rejected(reason) }
            let version = bumpVersion(key)
            objects[key] = Object(value: value, version: version)
            return .written(version: version)
        case .remove(let rules):
            if let reason = rejection(rules) { return .rejected(reason) }
            objects[key] = nil
            return .removed(version: current?.version ?? 0)
        case .increment(let delta, let rules):
            if let reason = rejection(rules) { return .rejected(reason) }
            let version = bumpVersion(key)
            let value = (current?.value ?? 0) &+ delta
            objects[key] = Object(value: value, version: version)
            return .incremented(value: value, version: version)
        }
    }

    /// A random operation on `key`, with reject rules that pass or fail.
    mutating func randomInput(for key: String) -> RecordedInput {
        let version = objects[key]?.version ?? 0
        let stale = version > 1 && Bool.random(using: &random) ? version - 1 : version
        nextValue += 1_000  // far apart: increments (±5) never reach another write's value
        switch Int.random(in: 0..<100, using: &random) {
        case ..<40: return .read
        case ..<60: return .write(value: nextValue, rejectRules: nil)
        case ..<65: return .remove(rejectRules: nil)
        case ..<75: return .write(value: nextValue, rejectRules: RecordedRejectRules(givenVersion: stale, versionNeGiven: true))
        case ..<78: return .remove(rejectRules: RecordedRejectRules(givenVersion: stale, versionLeGiven: true))
        case ..<80: return .write(value: nextValue, rejectRules: RecordedRejectRules(doesntExist: true))
        default: return .increment(delta: Int64.random(in: -5...5, using: &random), rejectRules: nil)
        }
    }

    /// `count` operations on `keys` keys. Linearization points are `spacing`
    /// ns apart; each interval reaches up to `spread` ns on either side.
    /// One update in `failureOneIn` loses its reply; half of those took effect.
    static func history(seed: UInt64, count: Int, keys: Int, spacing: Int64 = 100, spread: Int64,
                        failureOneIn: Int = 50) -> History {
        var workload = ReferenceWorkload(seed: seed)
        var history = History()
        for key in 0..<keys where key % 3 == 0 {
            let object = RecordedInitialObject(value: Int64(key), version: UInt64(key + 1))
            history.initialValues["k\(key)"] = object
            workload.objects["k\(key)"] = Object(value: object.value, version: object.version)
            workload.lastVersion["k\(key)"] = object.version
        }
        for id in 0..<count {
            let key = "k\(Int.random(in: 0..<keys, using: &workload.random))"
            let input = workload.randomInput(for: key)
            let point = Int64(id) * spacing
            let invokedAt = point - Int64.random(in: 0...spread, using: &workload.random)
            let completedAt = point + Int64.random(in: 0...spread, using: &workload.random)
            var output: RecordedOutput?
            if input != .read, Int.random(in: 0..<failureOneIn, using: &workload.random) == 0 {
                if Bool.random(using: &workload.random) { _ = workload.execute(input, on: key) }
            } else {
                output = workload.execute(input, on: key)
            }
            history.operations.append(RecordedOperation(
                id: id, client: id % 32, kind: input.defaultKind, key: key, input: input, output: output,
                invokedAt: invokedAt, completedAt: completedAt))
        }
        return history
    }

    /// Mean number of other operations of the same key whose intervals
    /// overlap an operation's (an operation without reply overlaps all later
    /// ones): how much order the history hides.
    static func meanOverlap(_ history: History) -> Double {
        var overlaps = 0
        for ops in Dictionary(grouping: history.operations, by: \.key).values {
            let byStart = ops.sorted { $0.invokedAt < $1.invokedAt }
            for (i, a) in byStart.enumerated() {
                let end = a.output == nil ? Int64.max : a.completedAt
                overlaps += 2 * byStart[(i + 1)...].prefix { $0.invokedAt <= end }.count
            }
        }
        return Double(overlaps) / Double(history.operations.count)
    }
}

@Suite struct GeneratedHistories {
    /// 10,000 operations on 100 keys, each overlapping about ten others of
    /// its key, 2% of the updates without reply. The timing is printed, not
    /// asserted: machines differ.
    @Test func tenThousandOperationsOnAHundredKeys() {
        let history = ReferenceWorkload.history(seed: 42, count: 10_000, keys: 100, spread: 50_000)
        let clock = ContinuousClock()
        var result: LinearizabilityResult?
        let elapsed = clock.measure { result = LinearizabilityChecker.check(history) }
        let overlap = ReferenceWorkload.meanOverlap(history)
        print("checked \(history.operations.count) operations on \(result!.keysChecked) keys "
            + "(mean overlap \(String(format: "%.1f", overlap)) per operation) in \(elapsed)")
        #expect(result!.isLinearizable, "\(result!)")
    }

    /// The same history with one read changed to a value nobody wrote.
    @Test func oneBadReadInTenThousandIsFound() throws {
        var history = ReferenceWorkload.history(seed: 42, count: 10_000, keys: 100, spread: 50_000)
        let index = try #require(history.operations.lastIndex { if case .found? = $0.output { true } else { false } })
        guard case .found(_, let version)? = history.operations[index].output else { return }
        history.operations[index].output = .found(value: -1, version: version)
        let result = LinearizabilityChecker.check(history)
        #expect(result.offendingKeys == [history.operations[index].key])
        #expect(result.violations.first?.culprits.contains { $0.operation.id == history.operations[index].id } == true)
    }

    /// A few hot keys: about 50 operations of a key overlap each one, 10% of
    /// the updates lose their reply; then the same with one read given a
    /// value nobody wrote and one given a long overwritten value.
    @Test func fewHotKeysWithHeavyOverlap() throws {
        var history = ReferenceWorkload.history(seed: 7, count: 1_000, keys: 4, spread: 10_000, failureOneIn: 10)
        #expect(LinearizabilityChecker.check(history).isLinearizable)
        func isRead(_ op: RecordedOperation) -> Bool { if case .found? = op.output { true } else { false } }

        let garbage = try #require(history.operations[500...].firstIndex(where: isRead))
        guard case .found(_, let version)? = history.operations[garbage].output else { return }
        history.operations[garbage].output = .found(value: -1_000_000_007, version: version)

        let stale = try #require(history.operations[750...].firstIndex { isRead($0) && $0.key != history.operations[garbage].key })
        let old = try #require(history.operations[..<600].last { isRead($0) && $0.key == history.operations[stale].key })
        history.operations[stale].output = old.output

        let result = LinearizabilityChecker.check(history)
        let broken = [garbage, stale].map { history.operations[$0] }
        #expect(result.offendingKeys == broken.map(\.key).sorted())
        for violation in result.violations where !violation.approximate {
            #expect(violation.culprits.map(\.operation.id) == broken.filter { $0.key == violation.key }.map(\.id),
                    "the broken read is named")
        }
    }
}
