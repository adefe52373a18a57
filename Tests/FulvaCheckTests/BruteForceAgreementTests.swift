@testable import FulvaCheck
import FulvaCore
import Foundation
import Testing

/// The search's reductions (version order, stutter steps, dominance, the
/// normal form of lost writes) are where a checker goes wrong quietly;
/// compare its verdicts with plain exhaustive search on thousands of small,
/// heavily overlapping histories.
@Suite struct BruteForceAgreement {
    struct Explored: Hashable {
        var placed: UInt64
        var state: ModelState
    }

    /// Every order that respects real time, each optional operation (no
    /// reply, or replied after `cut`) in or out. `refuted` holds the (placed,
    /// state) pairs explored in vain: plain Wing–Gong–Lowe with none of the
    /// checker's reductions.
    static func bruteForce(_ ops: [RecordedOperation], _ state: ModelState, cut: Int64 = .max, placed: UInt64 = 0,
                           refuted: inout Set<Explored>) -> Bool {
        func optional(_ i: Int) -> Bool { ops[i].output == nil || ops[i].completedAt > cut }
        if ops.indices.allSatisfy({ placed & (1 << $0) != 0 || optional($0) }) { return true }
        guard !refuted.contains(Explored(placed: placed, state: state)) else { return false }
        let model = RAMCloudModel()
        for i in ops.indices where placed & (1 << i) == 0 {
            // Every replied operation completed before i began must already be placed.
            let ready = ops.indices.allSatisfy { j in
                placed & (1 << j) != 0 || j == i || optional(j) || ops[j].completedAt >= ops[i].invokedAt
            }
            if ready, case .next(let after) = model.step(state, ops[i].input, ops[i].output),
               bruteForce(ops, after, cut: cut, placed: placed | (1 << i), refuted: &refuted) {
                return true
            }
        }
        refuted.insert(Explored(placed: placed, state: state))
        return false
    }

    /// An output near `output`, to turn a valid history into a dubious one.
    static func perturb(_ output: RecordedOutput?, _ random: inout SeededRandom) -> RecordedOutput? {
        func nudge(_ x: UInt64) -> UInt64 { Bool.random(using: &random) ? x + 1 : max(1, x) - 1 }
        let reasons: [RecordedRejection] = [.objectDoesntExist, .objectExists, .wrongVersion]
        switch (output, Int.random(in: 0..<4, using: &random)) {
        case (_, 0): return nil  // the reply is lost
        case (.found(let value, let version)?, 1): return .found(value: value + 1, version: version)
        case (.found(let value, let version)?, _): return .found(value: value, version: nudge(version))
        case (.written?, 1), (.removed?, 1): return .rejected(reasons.randomElement(using: &random)!)
        case (.written(let version)?, _): return .written(version: nudge(version))
        case (.removed(let version)?, _): return .removed(version: version.map(nudge))
        case (.incremented(let value, let version)?, 1): return .incremented(value: value - 1, version: version)
        case (.incremented(let value, let version)?, _): return .incremented(value: value, version: nudge(version))
        case (.rejected?, 1): return .rejected(reasons.randomElement(using: &random)!)
        case (.rejected?, _): return .written(version: UInt64.random(in: 1...5, using: &random))
        case (.absent?, _): return .found(value: 1_001, version: 1)
        case (nil, _): return .absent
        }
    }

    @Test func verdictsAgreeOnSmallHistories() {
        // Longer runs: FULVA_BRUTE_FORCE_ITERATIONS=100000, FULVA_BRUTE_FORCE_MAX_OPERATIONS=20.
        let environment = ProcessInfo.processInfo.environment
        let iterations = Int(environment["FULVA_BRUTE_FORCE_ITERATIONS"] ?? "") ?? 3_000
        let maxOperations = min(60, Int(environment["FULVA_BRUTE_FORCE_MAX_OPERATIONS"] ?? "") ?? 14)
        var random = SeededRandom(seed: 2024)
        var agreed = (linearizable: 0, not: 0)
        for seed in 0..<iterations {
            let count = Int.random(in: 2...maxOperations, using: &random)
            var history = ReferenceWorkload.history(seed: UInt64(seed), count: count, keys: 1, spacing: 10,
                                                    spread: Int64.random(in: 0...60, using: &random),
                                                    failureOneIn: Int.random(in: 2...4, using: &random))
            if Int.random(in: 0..<3, using: &random) == 0 { history.initialValues = [:] }
            if Bool.random(using: &random) {
                let index = Int.random(in: 0..<count, using: &random)
                history.operations[index].output = Self.perturb(history.operations[index].output, &random)
            }
            let ops = history.operations
            let initial = ModelState(history.initialValues["k0"])
            var refuted: Set<Explored> = []
            let expected = Self.bruteForce(ops, initial, refuted: &refuted)
            let verdict = LinearizabilityChecker.checkKey("k0", operations: ops, initial: history.initialValues["k0"])
            #expect(verdict.isLinearizable == expected, "seed \(seed): \(ops.map(\.summary))")
            if expected { agreed.linearizable += 1 } else { agreed.not += 1 }

            // Each candidate order on its own, on the whole history and on the
            // history as it stood at some completion (as the report's search
            // for the first failure sees it: linearizable whenever the whole
            // history is).
            let sorted = ops.sorted { ($0.invokedAt, $0.id) < ($1.invokedAt, $1.id) }
            guard let cut = sorted.filter({ $0.output != nil }).randomElement(using: &random)?.completedAt else { continue }
            let past = LinearizabilityChecker.history(sorted, asOf: cut)
            var refutedPast: Set<Explored> = []
            let expectedPast = Self.bruteForce(past, initial, cut: cut, refuted: &refutedPast)
            #expect(expectedPast || !expected, "seed \(seed): linearizable, but not as of \(cut)")
            for order in [KeySearch.CandidateOrder.unrepliedFirst, .repliedFirst] {
                var whole = KeySearch(ops: sorted, initial: initial, order: order)
                #expect((whole.run() != .notLinearizable) == expected, "seed \(seed), \(order)")
                var then = KeySearch(ops: past, initial: initial, cutAt: cut, order: order)
                #expect((then.run() != .notLinearizable) == expectedPast, "seed \(seed), \(order) as of \(cut)")
            }
        }
        print("brute force agreement: \(agreed.linearizable) linearizable, \(agreed.not) not")
        #expect(agreed.not > 300 && agreed.linearizable > 300, "both verdicts are exercised")
    }
}
