// Linearizability checking of recorded histories against a sequential model
// of one RAMCloud object.
//
// Linearizability is local (Herlihy & Wing): a history is linearizable iff
// each key's sub-history is. So the checker splits the history by key and,
// per key:
// 1. tries two cheap refutations (`KeySearch.refutedAtOnce`): a read of a
//    value nobody could have written, a version order that contradicts real
//    time (a stale read);
// 2. runs the Wing–Gong search in Lowe's form (`KeySearch`): a depth-first
//    search over "which pending operation takes effect next", pruned by a
//    cache of configurations known to fail, plus reductions specific to
//    RAMCloud's versions;
// 3. for a key that fails, finds the first reply that breaks it by a binary
//    search over time (`LinearizabilityChecker.explainViolation`).
// Nothing depends on hashing order or timing: verdicts and explanations are
// deterministic.

/// The versions an object may have, as far as the history tells: an
/// inclusive range.
///
/// A write whose reply was lost leaves its version unknown (only "above the
/// previous one" is certain); later reads and reject-rule outcomes narrow it.
/// A `versionNeGiven` rejection excludes a single version, which a range can
/// only express at its ends; inner exclusions are dropped. That is a sound
/// over-approximation: the checker may accept a history it could have
/// refused, never refuse a linearizable one.
struct VersionRange: Hashable, Sendable, CustomStringConvertible {
    var lower: UInt64
    var upper: UInt64

    /// Nothing known: a key absent from the start, whose past is unknown.
    static let any = VersionRange(lower: 0, upper: .max)
    static func exactly(_ version: UInt64) -> VersionRange { VersionRange(lower: version, upper: version) }

    var isEmpty: Bool { lower > upper }
    func contains(_ version: UInt64) -> Bool { lower <= version && version <= upper }

    /// The versions a later write of the key may receive: RAMCloud versions
    /// of one key only grow, across removes too.
    var successors: VersionRange? { lower == .max ? nil : VersionRange(lower: lower + 1, upper: .max) }

    /// Drops `version` if it lies at an end of the range (see the type's note).
    func excluding(_ version: UInt64) -> VersionRange? {
        var range = self
        if lower == version && upper == version { return nil }
        if lower == version { range.lower += 1 } else if upper == version { range.upper -= 1 }
        return range
    }

    var description: String {
        if lower == upper { return "v\(lower)" }
        if upper == .max { return lower == 0 ? "v?" : "v≥\(lower)" }
        return "v\(lower)…\(upper)"
    }
}

/// The model's state of one key.
enum ModelState: Hashable, Sendable, CustomStringConvertible {
    /// No object. `lastVersion` holds the versions the last removed object may
    /// have had: the next write must be given a higher one.
    case absent(lastVersion: VersionRange)
    case present(value: Int64, version: VersionRange)

    /// What the search's cache compares exactly; version ranges are
    /// compared by `admitsAll(of:)`.
    enum Shape: Hashable {
        case absent
        case present(value: Int64)
    }

    var shape: Shape {
        switch self {
        case .absent: .absent
        case .present(let value, _): .present(value: value)
        }
    }

    /// Every sequence of steps the model accepts from `other` it accepts from
    /// `self`, ending in a state that again admits all of the other's. Holds
    /// when the shapes match and `self`'s versions are wider; of a removed
    /// object's versions only the lowest matters (later writes must exceed
    /// it; nothing reads it).
    func admitsAll(of other: ModelState) -> Bool {
        switch (self, other) {
        case (.absent(let mine), .absent(let theirs)):
            mine.lower <= theirs.lower
        case (.present(let mine, let myVersions), .present(let theirs, let theirVersions)):
            mine == theirs && myVersions.lower <= theirVersions.lower && myVersions.upper >= theirVersions.upper
        default:
            false
        }
    }

    init(_ initial: RecordedInitialObject?) {
        self = initial.map { .present(value: $0.value, version: .exactly($0.version)) } ?? .absent(lastVersion: .any)
    }

    var description: String {
        switch self {
        case .absent(let last): last == .any ? "absent" : "absent (last removed \(last))"
        case .present(let value, let version): "\(value) @ \(version)"
        }
    }
}

/// RAMCloud's semantics of one object, as a step function over `ModelState`.
struct RAMCloudModel: Sendable {
    /// Refusal texts are built only for reports: the search refuses steps
    /// all the time and must not pay for strings.
    var explains = false

    enum Step: Sendable {
        case next(ModelState)
        case refused(String)
    }

    private func refuse(_ reason: @autoclosure () -> String) -> Step {
        .refused(explains ? reason() : "")
    }

    /// The versions of the current object for which `rules` let the operation
    /// through (`nil`: none). RAMCloud (RejectRules, ObjectManager::
    /// rejectOperation): a missing object is refused only by `doesntExist`; an
    /// existing one by `exists`, by `versionLeGiven` when its version ≤ given,
    /// by `versionNeGiven` when its version ≠ given.
    static func admitted(by rules: RecordedRejectRules?, in state: ModelState) -> VersionRange? {
        switch state {
        case .absent(let last):
            return rules?.doesntExist == true ? nil : last
        case .present(_, var version):
            guard let rules else { return version }
            if rules.exists { return nil }
            if rules.versionLeGiven {
                guard rules.givenVersion < .max else { return nil }
                version.lower = max(version.lower, rules.givenVersion + 1)
            }
            if rules.versionNeGiven {
                guard version.contains(rules.givenVersion) else { return nil }
                version = .exactly(rules.givenVersion)
            }
            return version.isEmpty ? nil : version
        }
    }

    /// The versions of the current object for which `rules` refuse the
    /// operation with `reason` (`nil`: none).
    static func refused(by rules: RecordedRejectRules?, with reason: RecordedRejection,
                        in state: ModelState) -> VersionRange? {
        guard let rules else { return nil }
        switch (state, reason) {
        case (.absent(let last), .objectDoesntExist):
            return rules.doesntExist ? last : nil
        case (.present(_, let version), .objectExists):
            return rules.exists ? version : nil
        case (.present(_, var version), .wrongVersion):
            guard !rules.exists else { return nil }
            switch (rules.versionLeGiven, rules.versionNeGiven) {
            case (true, true): return version  // v ≤ g or v ≠ g always holds
            case (true, false): version.upper = min(version.upper, rules.givenVersion)
            case (false, true): return version.excluding(rules.givenVersion)
            case (false, false): return nil
            }
            return version.isEmpty ? nil : version
        default:
            return nil
        }
    }

    /// `state` with the current object's (or tombstone's) versions narrowed
    /// to `versions`.
    private static func narrowing(_ state: ModelState, to versions: VersionRange) -> ModelState {
        switch state {
        case .absent: .absent(lastVersion: versions)
        case .present(let value, _): .present(value: value, version: versions)
        }
    }

    /// Applies one operation. `output == nil` means it took effect with an
    /// outcome nobody saw; only the accepting outcome is modelled, since a
    /// rejection changes nothing and equals "never took effect", which the
    /// search covers by leaving the operation out.
    func step(_ state: ModelState, _ input: RecordedInput, _ output: RecordedOutput?) -> Step {
        let rules: RecordedRejectRules?
        switch (input, output) {
        case (.read, .found?), (.read, .absent?), (.write, .written?), (.remove, .removed?),
             (.increment, .incremented?), (.write, nil), (.remove, nil), (.increment, nil):
            rules = nil
        case (.write(_, let given), .rejected?), (.remove(let given), .rejected?), (.increment(_, let given), .rejected?):
            rules = given
        default:
            return refuse("\(Self.describe(input)) cannot answer \(Self.describe(output))")
        }
        if case .rejected(let reason)? = output {
            guard let versions = Self.refused(by: rules, with: reason, in: state) else {
                return refuse("rejected (\(reason)), but \(Self.describe(rules)) admit it on \(state)")
            }
            return .next(Self.narrowing(state, to: versions))
        }

        switch input {
        case .read:
            switch (output, state) {
            case (.found(let value, let version)?, .present(let held, let versions))
                where value == held && versions.contains(version):
                return .next(.present(value: held, version: .exactly(version)))
            case (.absent?, .absent):
                return .next(state)
            default:
                return refuse("read \(Self.describe(output)), but the key holds \(state)")
            }

        case .write(let value, let rules):
            guard let before = Self.admitted(by: rules, in: state) else {
                return refuse("\(Self.describe(rules)) refuse it on \(state)")
            }
            guard case .written(let version)? = output else {
                return before.successors.map { .next(.present(value: value, version: $0)) }
                    ?? refuse("no version is left above \(before)")
            }
            guard before.lower < version else {
                return refuse("written as v\(version), not above the key's previous version (\(state))")
            }
            return .next(.present(value: value, version: .exactly(version)))

        case .remove(let rules):
            guard let before = Self.admitted(by: rules, in: state) else {
                return refuse("\(Self.describe(rules)) refuse it on \(state)")
            }
            // 0 or nil: the client was not told which version it removed.
            let told: UInt64? = if case .removed(let version?)? = output, version != 0 { version } else { nil }
            guard case .present = state else {
                // RAMCloud logs nothing and answers version 0 for a missing object.
                if output == nil { return refuse("removing an absent key has no effect") }
                return told.map { refuse("removed v\($0), but the key is \(state)") } ?? .next(state)
            }
            guard let told else { return .next(.absent(lastVersion: before)) }
            guard before.contains(told) else { return refuse("removed v\(told), but the key holds \(state)") }
            return .next(.absent(lastVersion: .exactly(told)))

        case .increment(let delta, let rules):
            guard let before = Self.admitted(by: rules, in: state) else {
                return refuse("\(Self.describe(rules)) refuse it on \(state)")
            }
            let old: Int64 = if case .present(let value, _) = state { value } else { 0 }
            let sum = old &+ delta
            guard case .incremented(let value, let version)? = output else {
                return before.successors.map { .next(.present(value: sum, version: $0)) }
                    ?? refuse("no version is left above \(before)")
            }
            guard value == sum else { return refuse("incremented to \(value), but the key holds \(state)") }
            guard before.lower < version else {
                return refuse("incremented as v\(version), not above the key's previous version (\(state))")
            }
            return .next(.present(value: value, version: .exactly(version)))
        }
    }

    static func describe(_ input: RecordedInput) -> String {
        switch input {
        case .read: "read"
        case .write(let value, let rules): "write \(value)" + (rules.map { " " + describe($0) } ?? "")
        case .remove(let rules): "remove" + (rules.map { " " + describe($0) } ?? "")
        case .increment(let delta, let rules):
            "increment \(delta >= 0 ? "+" : "")\(delta)" + (rules.map { " " + describe($0) } ?? "")
        }
    }

    static func describe(_ rules: RecordedRejectRules?) -> String {
        guard let rules else { return "no reject rules" }
        var parts: [String] = []
        if rules.doesntExist { parts.append("doesntExist") }
        if rules.exists { parts.append("exists") }
        if rules.versionLeGiven { parts.append("versionLe \(rules.givenVersion)") }
        if rules.versionNeGiven { parts.append("versionNe \(rules.givenVersion)") }
        return "reject rules {\(parts.joined(separator: ", "))}"
    }

    static func describe(_ output: RecordedOutput?) -> String {
        switch output {
        case nil: "no reply"
        case .found(let value, let version)?: "found \(value) @ v\(version)"
        case .absent?: "absent"
        case .written(let version)?: "written v\(version)"
        case .removed(let version)?: version.map { "removed v\($0)" } ?? "removed"
        case .incremented(let value, let version)?: "incremented to \(value) @ v\(version)"
        case .rejected(let reason)?: "rejected (\(reason))"
        }
    }
}

extension RecordedOperation {
    /// The operation cannot have changed the object, whenever it ran.
    var isObservation: Bool {
        switch output {
        case .found?, .absent?, .rejected?: true
        default: false
        }
    }

    /// One line for reports: "#12 client 3 write 7 → written v9 [100, 250]".
    public var summary: String {
        let end = output == nil ? "∞" : "\(completedAt)"
        return "#\(id) client \(client) \(RAMCloudModel.describe(input)) → \(RAMCloudModel.describe(output)) "
            + "[\(invokedAt), \(end)]"
    }
}

/// Why one key's sub-history is not linearizable: the first reply that no
/// order of what came before can explain.
public struct KeyViolation: Hashable, Sendable, CustomStringConvertible {
    public var key: String
    /// Number of operations recorded on the key (failed reads included).
    public var operationCount: Int
    /// The first completion time at which the key's history stops being
    /// linearizable: everything that completed earlier linearizes.
    public var failedAt: Int64
    /// One linearization of everything that completed before `failedAt`, in
    /// order. Operations still pending then appear if they must have taken
    /// effect already (shown with the reply they got later).
    public var longestPrefix: [RecordedOperation]
    /// The key's state after `longestPrefix`, in words.
    public var stateAfterPrefix: String
    /// An operation whose reply cannot be explained, and why.
    public struct Culprit: Hashable, Sendable {
        public var operation: RecordedOperation
        /// What the model says about its reply after `longestPrefix` (or
        /// where the prefix placed it).
        public var reason: String
    }
    /// The operations that completed at `failedAt`.
    public var culprits: [Culprit]
    /// The search for the first failure gave up on some prefix (too
    /// costly): the failure may lie later than `failedAt`.
    public var approximate: Bool

    /// All operations of the key the explanation refers to.
    public var operations: [RecordedOperation] {
        longestPrefix + culprits.map(\.operation).filter { !longestPrefix.contains($0) }
    }

    /// The prefix's end is what matters; its start is history.
    static let prefixLinesShown = 12

    public var description: String {
        var lines = ["key \"\(key)\": not linearizable (\(operationCount) operations)"]
        lines.append("  everything that completed before t=\(failedAt) linearizes, e.g. as (\(longestPrefix.count) "
            + "operations, ending in \(stateAfterPrefix)):")
        if longestPrefix.count > Self.prefixLinesShown {
            lines.append("    … \(longestPrefix.count - Self.prefixLinesShown) earlier operations")
        }
        lines += longestPrefix.suffix(Self.prefixLinesShown).map { op in
            "    " + op.summary + (op.output != nil && op.completedAt >= failedAt ? " (reply still pending)" : "")
        }
        lines.append("  but no order explains the reply of:")
        lines += culprits.map { "    \($0.operation.summary): \($0.reason)" }
        if approximate { lines.append("  (the search for the first failure was cut short: it may lie later)") }
        return lines.joined(separator: "\n")
    }
}

/// The verdict on one key.
public enum KeyCheckResult: Hashable, Sendable {
    /// `order`: ids of the operations that took effect, in a valid
    /// linearization order (failed operations left out did not take effect).
    case linearizable(order: [Int])
    case notLinearizable(KeyViolation)

    public var isLinearizable: Bool { if case .linearizable = self { true } else { false } }
}

/// The verdict on a whole history.
public struct LinearizabilityResult: Hashable, Sendable, CustomStringConvertible {
    public var keysChecked: Int
    public var operationsChecked: Int
    /// One entry per offending key, sorted by key.
    public var violations: [KeyViolation]

    public var isLinearizable: Bool { violations.isEmpty }
    public var offendingKeys: [String] { violations.map(\.key) }

    public var description: String {
        let scope = "\(operationsChecked) operations on \(keysChecked) keys"
        guard !isLinearizable else { return "linearizable: \(scope)" }
        return (["NOT linearizable: \(violations.count) of \(keysChecked) keys (\(scope))"]
            + violations.map(\.description)).joined(separator: "\n")
    }
}

/// Checks recorded histories for linearizability against RAMCloud's
/// single-object semantics (see `RAMCloudModel`).
public enum LinearizabilityChecker {
    /// Checks every key of `history`; keys are independent (locality).
    public static func check(_ history: History) -> LinearizabilityResult {
        let byKey = Dictionary(grouping: history.operations, by: \.key)
        let violations = byKey.keys.sorted().compactMap { key -> KeyViolation? in
            if case .notLinearizable(let violation) = checkKey(key, operations: byKey[key]!,
                                                              initial: history.initialValues[key]) {
                return violation
            }
            return nil
        }
        return LinearizabilityResult(keysChecked: byKey.count, operationsChecked: history.operations.count,
                                     violations: violations)
    }

    /// Checks the operations of one key, starting from `initial` (absent when
    /// nil). Operations on other keys must not be passed.
    public static func checkKey(_ key: String, operations: [RecordedOperation],
                                initial: RecordedInitialObject? = nil) -> KeyCheckResult {
        // A read without reply neither changed nor showed anything.
        let ops = operations
            .filter { !($0.output == nil && $0.input == .read) }
            .sorted { ($0.invokedAt, $0.id) < ($1.invokedAt, $1.id) }
        if let bad = ops.first(where: { $0.output != nil && $0.completedAt < $0.invokedAt }) {
            return .notLinearizable(KeyViolation(
                key: key, operationCount: operations.count, failedAt: bad.completedAt, longestPrefix: [],
                stateAfterPrefix: "unknown",
                culprits: [.init(operation: bad, reason: "completes before it is invoked: the recorder is broken")],
                approximate: false))
        }
        if case .linearizable(let order) = KeySearch.decide(ops: ops, initial: ModelState(initial)) {
            return .linearizable(order: order.map { ops[$0].id })
        }
        return .notLinearizable(explainViolation(key: key, ops: ops, initial: ModelState(initial),
                                                 operationCount: operations.count))
    }

    /// The operations invoked by `time`: the history as it stood then. An
    /// operation still pending may or may not have taken effect yet, with
    /// the reply it later got (the search is told to treat it so); pending
    /// reads and rejections would only narrow things down and are dropped.
    static func history(_ ops: [RecordedOperation], asOf time: Int64) -> [RecordedOperation] {
        ops.filter { op in
            op.invokedAt <= time && (op.output == nil || op.completedAt <= time || !op.isObservation)
        }
    }

    /// Finds the first completion whose reply breaks linearizability.
    ///
    /// If a history linearizes, so does its state as of any time t (cut its
    /// linearization after the last operation completed by t: every
    /// operation before that point was invoked by t, and those still pending
    /// took effect with their eventual reply): linearizability as of t is
    /// monotone in t, so a binary search over completion times finds the
    /// first time it fails, with one search per halving. That names the
    /// culprit exactly, however long the history, where "how far did the
    /// search get" does not: an observation of an old version pins, through
    /// the version order, every later write behind it. Each search is bounded;
    /// one that gives up counts as failing, which can only move the answer
    /// earlier, and is reported.
    static func explainViolation(key: String, ops: [RecordedOperation], initial: ModelState,
                                 operationCount: Int) -> KeyViolation {
        let times = Array(Set(ops.compactMap { $0.output == nil ? nil : $0.completedAt })).sorted()
        let budget = 100 * ops.count + 100_000
        var approximate = false
        func linearization(asOf index: Int) -> (ops: [RecordedOperation], order: [Int])? {
            let past = index < 0 ? [] : history(ops, asOf: times[index])
            switch KeySearch.decide(ops: past, initial: initial, cutAt: index < 0 ? nil : times[index], budget: budget) {
            case .linearizable(let order): return (past, order)
            case .notLinearizable: return nil
            case .gaveUp:
                approximate = true
                return nil
            }
        }
        // Invariant: the history fails as of times[high] (as of the last
        // completion it is the whole history) and holds as of times[low]
        // (index -1: nothing has happened).
        var low = -1, high = times.count - 1
        var witness: (ops: [RecordedOperation], order: [Int]) = ([], [])
        while high - low > 1 {
            let middle = (low + high) / 2
            if let found = linearization(asOf: middle) { (low, witness) = (middle, found) } else { high = middle }
        }
        let failedAt = times[high]

        // Replay the witness; note the state each culprit met, if placed.
        var explaining = RAMCloudModel()
        explaining.explains = true
        let culpritIDs = Set(ops.filter { $0.output != nil && $0.completedAt == failedAt }.map(\.id))
        var state = initial
        var metState: [Int: ModelState] = [:]
        for index in witness.order {
            let op = witness.ops[index]
            if culpritIDs.contains(op.id) { metState[op.id] = state }
            if case .next(let after) = explaining.step(state, op.input, op.output) { state = after }
        }
        let culprits = ops.filter { culpritIDs.contains($0.id) }.map { op in
            let reason: String = switch explaining.step(metState[op.id] ?? state, op.input, op.output) {
            case .refused(let reason): reason
            case .next: "its reply fits this order, but then no order of the others does"
            }
            return KeyViolation.Culprit(operation: op, reason: reason)
        }
        return KeyViolation(key: key, operationCount: operationCount, failedAt: failedAt,
                            longestPrefix: witness.order.map { witness.ops[$0] },
                            stateAfterPrefix: state.description, culprits: culprits, approximate: approximate)
    }
}

/// Wing–Gong–Lowe search over one key's operations.
///
/// The invocations and completions of replied operations are events in a
/// doubly linked list sorted by time (an invocation before a completion at
/// the same instant: operations overlap unless one completes strictly
/// before the other is invoked). At each point, the operations that may take
/// effect next (the candidates) are those invoked before the first
/// completion still in the list. Linearizing one lifts both of its events
/// out of the list; backtracking puts them back (dancing links), so each
/// step costs O(1) besides the model and the cache.
///
/// Operations without reply have no completion: they may take effect at any
/// later point, or never. They are kept apart, sorted by invocation; the
/// search succeeds as soon as every replied operation is placed. Where they
/// go among the candidates matters a lot, in opposite ways (`CandidateOrder`):
/// trying them first finds a linearization of a heavily overlapping history
/// quickly but refutes slowly; trying them last (with just-in-time help: when
/// the model refuses a replied candidate, the unreplied operations that would
/// make it acceptable right after them are tried at once) refutes quickly, as
/// lean configurations fail first and prune the rest (below). Both orders are
/// complete, so `decide` runs the first within a budget, then the second.
///
/// The cache (Lowe's) holds the configurations, (operations placed, state),
/// from which every continuation failed. It prunes by dominance, not only
/// equality: since an operation without reply may also never take effect,
/// a configuration is pruned when a failed one had the same replied
/// operations, a subset of its unreplied ones and a state that admits all of
/// its state's continuations (`ModelState.admitsAll`): it can do nothing the
/// failed one could not. And an unreplied blind write or remove never
/// directly follows another unreplied operation: dropping the earlier one
/// (it never took effect) leaves a state at least as permissive. As that
/// rule depends on how a configuration was reached, only configurations
/// reached by a replied operation (which allow every move) enter the cache.
/// Without these, refuting a history with k operations without reply costs
/// up to 2^k.
///
/// Two more sound reductions keep heavily overlapping histories cheap:
/// - Version order. A key's versions strictly increase along any valid
///   linearization, so an operation that created a known version must follow
///   every one that created a lower one, and an operation that observed
///   version v (a read, a remove) must follow the creator of every version
///   ≤ v and precede the creator of every version > v. Without this, the
///   search would try every increasing subset of concurrent writes.
/// - Stutter steps. A candidate that only observes (a read, a rejection:
///   wherever it goes, it at most narrows a version range) and whose step
///   leaves the current state unchanged is taken without trying the
///   alternatives. Moving it to the front of any linearization of the rest
///   keeps that linearization valid: the model is monotone in its version
///   ranges (a wider range admits everything a narrower one does). So if the
///   search fails after such a step, it fails at the step's origin too. An
///   operation that merely happens to change nothing here (a remove of an
///   absent key) does not qualify: elsewhere it might remove an object.
struct KeySearch {
    /// Where unreplied operations go among the candidates (see the type).
    enum CandidateOrder: Sendable {
        case unrepliedFirst
        case repliedFirst
    }

    enum Outcome: Equatable, Sendable {
        /// Operation indices in a valid order.
        case linearizable([Int])
        case notLinearizable
        /// The budget ran out first.
        case gaveUp
    }

    /// Runs the order that finds linearizations quickly within a budget
    /// proportional to the history, then the one that refutes quickly.
    static func decide(ops: [RecordedOperation], initial: ModelState, cutAt: Int64? = nil,
                       budget: Int? = nil) -> Outcome {
        if refutedAtOnce(ops, initial: initial, cutAt: cutAt) { return .notLinearizable }
        let quickBudget = 100 * ops.count + 100_000
        var quick = KeySearch(ops: ops, initial: initial, cutAt: cutAt, order: .unrepliedFirst,
                              budget: budget.map { min($0, quickBudget) } ?? quickBudget)
        let first = quick.run()
        guard first == .gaveUp else { return first }
        var thorough = KeySearch(ops: ops, initial: initial, cutAt: cutAt, order: .repliedFirst, budget: budget)
        return thorough.run()
    }

    /// Cheap, sound refutations of what the search handles worst: histories
    /// whose failure it can only prove by trying every combination of the
    /// operations without reply around it. Two checks:
    /// - A replied read saw what no order could show: a value no operation
    ///   could have produced, or no object where none was ever removed. The
    ///   values are over-approximated: the initial one, 0 (an increment of a
    ///   missing object), every write's, every increment's reply, and what
    ///   increments without reply can add to those (unless that grows too
    ///   large to enumerate; then nothing is refuted). This catches a read of
    ///   a garbage value that keeps a real version.
    /// - Version order against real time: an operation that the version order
    ///   puts after another completed before that one was invoked. This
    ///   catches stale reads: the overwriting write completed before the
    ///   read began, yet the read's version says it came first.
    static func refutedAtOnce(_ ops: [RecordedOperation], initial: ModelState, cutAt: Int64?) -> Bool {
        let replied = ops.filter { op in op.output != nil && cutAt.map { op.completedAt <= $0 } ?? true }

        var values: Set<Int64> = [0]
        var unknownDeltas: [Int64] = []
        var canBeAbsent = false
        if case .present(let value, _) = initial { values.insert(value) } else { canBeAbsent = true }
        for op in ops {
            switch (op.input, op.output) {
            case (.write(let value, _), _): values.insert(value)
            case (.remove, _): canBeAbsent = true
            case (.increment(let delta, _), nil): unknownDeltas.append(delta)
            case (.increment, .incremented(let value, _)?): values.insert(value)
            default: break
            }
        }
        var enumerable = true
        for delta in unknownDeltas where delta != 0 && enumerable {
            values.formUnion(values.map { $0 &+ delta })
            enumerable = values.count <= 100_000
        }
        let impossibleRead = enumerable && replied.contains { op in
            switch op.output {
            case .found(let value, _)?: !values.contains(value)
            case .absent?: !canBeAbsent
            default: false
            }
        }
        if impossibleRead { return true }

        let keyed = replied.compactMap { op in versionKey(op).map { (key: $0, op: op) } }
            .sorted { ($0.key.version, $0.key.observes) < ($1.key.version, $1.key.observes) }
        var latestInvocationBefore = Int64.min  // over the groups before the current one
        var group = keyed.startIndex
        while group < keyed.endIndex {
            let end = keyed[group...].firstIndex { $0.key != keyed[group].key } ?? keyed.endIndex
            if keyed[group..<end].contains(where: { $0.op.completedAt < latestInvocationBefore }) { return true }
            latestInvocationBefore = max(latestInvocationBefore, keyed[group..<end].map(\.op.invokedAt).max()!)
            group = end
        }
        return false
    }

    /// Where an operation stands in the version order: the version it
    /// created (creators first) or observed.
    static func versionKey(_ op: RecordedOperation) -> (version: UInt64, observes: Int)? {
        switch op.output {
        case .written(let version)?, .incremented(_, let version)?: (version, 0)
        case .found(_, let version)?: (version, 1)
        case .removed(let version?)? where version != 0: (version, 1)
        default: nil
        }
    }

    let ops: [RecordedOperation]
    let initial: ModelState
    let order: CandidateOrder
    let model = RAMCloudModel()

    // Linked list over the replied operations' events: node 0 is the head,
    // 1...events.count the events, events.count + 1 the tail.
    private var events: [(op: Int, isCompletion: Bool)] = []
    private var next: [Int] = []
    private var prev: [Int] = []
    private var invocationNode: [Int]
    private var completionNode: [Int]
    private var head: Int { 0 }
    private var tail: Int { events.count + 1 }

    /// Operations without reply (or replied after the cut), by invocation.
    private var unreplied: [Int] = []
    /// Each operation's index among the replied or among the unreplied ones.
    private var classIndex: [Int]
    private var repliedCount: Int { ops.count - unreplied.count }

    // Version order: `versionOrdered` lists the operations with a known
    // version by (version, creators first); an operation may be linearized
    // once every entry before `versionGroupStart[op]` is.
    private var versionOrdered: [Int] = []
    private var versionPosition: [Int]
    private var versionGroupStart: [Int]

    /// Whether each operation may be left out: it has no reply, or its reply
    /// came after the cut the search is asked about. Such an operation has no
    /// completion event; the others are "replied".
    private var optional: [Bool]
    /// Configurations to enter before giving up.
    let budget: Int?

    /// `cutAt`: check the history as it stood then (see
    /// `LinearizabilityChecker.history(_:asOf:)`); operations replied later
    /// may take effect, with that reply, or not. `ops` must be sorted by
    /// invocation.
    init(ops: [RecordedOperation], initial: ModelState, cutAt: Int64? = nil, order: CandidateOrder,
         budget: Int? = nil) {
        self.ops = ops
        self.initial = initial
        self.order = order
        self.budget = budget
        optional = ops.map { op in op.output == nil || cutAt.map { op.completedAt > $0 } ?? false }
        invocationNode = Array(repeating: -1, count: ops.count)
        completionNode = Array(repeating: -1, count: ops.count)
        classIndex = Array(repeating: -1, count: ops.count)
        versionPosition = Array(repeating: -1, count: ops.count)
        versionGroupStart = Array(repeating: 0, count: ops.count)

        var timed: [(time: Int64, isCompletion: Bool, op: Int)] = []
        var repliedSoFar = 0
        for (index, op) in ops.enumerated() {
            if optional[index] {
                classIndex[index] = unreplied.count
                unreplied.append(index)
            } else {
                classIndex[index] = repliedSoFar
                repliedSoFar += 1
                timed.append((op.invokedAt, false, index))
                timed.append((op.completedAt, true, index))
            }
        }
        timed.sort { ($0.time, $0.isCompletion ? 1 : 0, $0.op) < ($1.time, $1.isCompletion ? 1 : 0, $1.op) }
        events = timed.map { ($0.op, $0.isCompletion) }
        for (offset, event) in events.enumerated() {
            if event.isCompletion { completionNode[event.op] = offset + 1 } else { invocationNode[event.op] = offset + 1 }
        }
        next = Array(1...(events.count + 1)) + [events.count + 1]
        prev = [0] + Array(0...events.count)

        // Only operations every linearization contains: an optional one may
        // be left out, and then constrains nothing.
        let keyed = ops.indices.filter { !optional[$0] }
            .compactMap { index in Self.versionKey(ops[index]).map { (key: $0, op: index) } }
            .sorted { ($0.key.version, $0.key.observes, $0.op) < ($1.key.version, $1.key.observes, $1.op) }
        versionOrdered = keyed.map(\.op)
        for (position, entry) in keyed.enumerated() {
            versionPosition[entry.op] = position
            let sameAsPrevious = position > 0 && keyed[position - 1].key == entry.key
            versionGroupStart[entry.op] = sameAsPrevious ? versionGroupStart[keyed[position - 1].op] : position
        }
    }

    private mutating func unlink(_ node: Int) {
        next[prev[node]] = next[node]
        prev[next[node]] = prev[node]
    }

    private mutating func relink(_ node: Int) {
        next[prev[node]] = node
        prev[next[node]] = node
    }

    /// Takes a replied operation's events out of the list.
    private mutating func lift(_ op: Int) {
        guard invocationNode[op] >= 0 else { return }
        unlink(invocationNode[op])
        unlink(completionNode[op])
    }

    private mutating func unlift(_ op: Int) {
        guard invocationNode[op] >= 0 else { return }
        relink(completionNode[op])
        relink(invocationNode[op])
    }

    /// Completion time of the first replied operation still to place: an
    /// unreplied operation invoked later cannot come next.
    private func deadline() -> Int64 {
        var node = next[head]
        while node != tail, !events[node - 1].isCompletion { node = next[node] }
        return node == tail ? .max : ops[events[node - 1].op].completedAt
    }

    private struct Configuration: Hashable {
        var replied: Bitset
        var shape: ModelState.Shape
    }

    /// An operation without reply that overwrites the object whatever it was.
    private static func isBlindOverwrite(_ op: RecordedOperation) -> Bool {
        switch (op.input, op.output) {
        case (.write(_, nil), nil), (.remove(nil), nil): true
        default: false
        }
    }

    /// Where the candidate scan of a configuration stands.
    private enum Cursor {
        /// At a node of the list (replied operations).
        case replied(node: Int)
        /// Trying `unreplied[index...]` as enablers of the refused replied
        /// candidate at `node`; then on to the node after it.
        case enabling(node: Int, index: Int)
        /// At an index of `unreplied`.
        case unreplied(index: Int)
    }

    /// Where the scan of a configuration's candidates begins.
    private var firstCandidate: Cursor {
        order == .unrepliedFirst ? .unreplied(index: 0) : .replied(node: next[head])
    }

    private struct Frame {
        var op: Int
        var before: ModelState
        var versionFrontier: Int
        /// Taken as a stutter step: no alternative to try at its origin.
        var forced: Bool
        /// Where the scan of the origin's candidates continues if this fails.
        var resume: Cursor
    }

    mutating func run() -> Outcome {
        var unplaced = repliedCount
        guard unplaced > 0 else { return .linearizable([]) }
        var placedReplied = Bitset(count: repliedCount)
        var placedUnreplied = Bitset(count: unreplied.count)
        var state = initial
        var stack: [Frame] = []
        /// Configurations that failed, by replied set and state shape: the
        /// unreplied operations they had placed, and their states.
        var failed: [Configuration: [(unreplied: Bitset, state: ModelState)]] = [:]
        /// Position in `versionOrdered` of the first operation not linearized.
        var versionFrontier = 0
        var entered = 0
        /// Unreplied operations invoked after this cannot come next.
        var currentDeadline = deadline()

        func allowed(_ op: Int) -> Bool { versionPosition[op] < 0 || versionGroupStart[op] <= versionFrontier }

        func setPlaced(_ op: Int, _ placed: Bool) {
            if optional[op] {
                if placed { placedUnreplied.insert(classIndex[op]) } else { placedUnreplied.remove(classIndex[op]) }
            } else {
                if placed { placedReplied.insert(classIndex[op]) } else { placedReplied.remove(classIndex[op]) }
            }
        }

        /// Linearizes `op` (leading to `after`) unless the configuration it
        /// leads to is known to fail. Returns whether it did.
        func push(_ op: Int, _ after: ModelState, forced: Bool = false, resume: Cursor) -> Bool {
            entered += 1
            if Self.isBlindOverwrite(ops[op]), let last = stack.last, optional[last.op] { return false }
            setPlaced(op, true)
            if let dominating = failed[Configuration(replied: placedReplied, shape: after.shape)],
               dominating.contains(where: {
                   $0.unreplied.isSubset(of: placedUnreplied) && $0.state.admitsAll(of: after)
               }) {
                setPlaced(op, false)
                return false
            }
            stack.append(Frame(op: op, before: state, versionFrontier: versionFrontier, forced: forced, resume: resume))
            state = after
            lift(op)
            if !optional[op] {
                currentDeadline = deadline()
                unplaced -= 1
            }
            if versionPosition[op] == versionFrontier {
                while versionFrontier < versionOrdered.count,
                      case let candidate = versionOrdered[versionFrontier],
                      placedReplied.contains(classIndex[candidate]) {
                    versionFrontier += 1
                }
            }
            return true
        }

        /// Records the current configuration as failed and undoes choices up
        /// to and including the latest one that has alternatives; returns
        /// where to resume, nil if nothing is left.
        func backtrack() -> Cursor? {
            while let frame = stack.popLast() {
                if !optional[frame.op] {
                    failed[Configuration(replied: placedReplied, shape: state.shape), default: []]
                        .append((placedUnreplied, state))
                }
                unlift(frame.op)
                setPlaced(frame.op, false)
                state = frame.before
                versionFrontier = frame.versionFrontier
                if !optional[frame.op] {
                    unplaced += 1
                    currentDeadline = deadline()
                }
                if !frame.forced { return frame.resume }
            }
            return nil
        }

        /// The first unreplied operation from `index` on that can come next.
        func nextUnreplied(from index: Int) -> Int? {
            var index = index
            while index < unreplied.count, ops[unreplied[index]].invokedAt <= currentDeadline {
                if !placedUnreplied.contains(index) { return index }
                index += 1
            }
            return nil
        }

        var cursor = firstCandidate
        var fresh = true  // at the start of a configuration's candidates
        while true {
            if unplaced == 0 { return .linearizable(stack.map(\.op)) }
            if let budget, entered > budget { return .gaveUp }
            if fresh {
                fresh = false
                if let (op, after) = stutterStep(from: state, allowed: allowed) {
                    if push(op, after, forced: true, resume: cursor) {
                        cursor = firstCandidate
                        fresh = true
                    } else {
                        guard let resume = backtrack() else { return .notLinearizable }
                        cursor = resume
                    }
                    continue
                }
            }
            switch cursor {
            case .replied(let node):
                let event = events[node - 1]
                if event.isCompletion {
                    if order == .repliedFirst {
                        // No replied candidate left to try: the unreplied ones.
                        cursor = .unreplied(index: 0)
                        continue
                    }
                    // No candidate works, yet one had to take effect before
                    // the first pending completion. Undo the last choice.
                    guard let resume = backtrack() else { return .notLinearizable }
                    cursor = resume
                } else if allowed(event.op),
                          case .next(let after) = model.step(state, ops[event.op].input, ops[event.op].output) {
                    if push(event.op, after, resume: .replied(node: next[node])) {
                        cursor = firstCandidate
                        fresh = true
                    } else {
                        cursor = .replied(node: next[node])
                    }
                } else {
                    cursor = allowed(event.op) && order == .repliedFirst
                        ? .enabling(node: node, index: 0) : .replied(node: next[node])
                }
            case .enabling(let node, let index):
                let candidate = ops[events[node - 1].op]
                guard let index = nextUnreplied(from: index) else {
                    cursor = .replied(node: next[node])
                    continue
                }
                let op = unreplied[index]
                if case .next(let after) = model.step(state, ops[op].input, ops[op].output),
                   case .next = model.step(after, candidate.input, candidate.output),
                   push(op, after, resume: .enabling(node: node, index: index + 1)) {
                    cursor = firstCandidate
                    fresh = true
                } else {
                    cursor = .enabling(node: node, index: index + 1)
                }
            case .unreplied(let index):
                guard let index = nextUnreplied(from: index) else {
                    if order == .unrepliedFirst {
                        cursor = .replied(node: next[head])
                        continue
                    }
                    guard let resume = backtrack() else { return .notLinearizable }
                    cursor = resume
                    continue
                }
                let op = unreplied[index]
                if case .next(let after) = model.step(state, ops[op].input, ops[op].output),
                   push(op, after, resume: .unreplied(index: index + 1)) {
                    cursor = firstCandidate
                    fresh = true
                } else {
                    cursor = .unreplied(index: index + 1)
                }
            }
        }
    }

    /// The first candidate that only observes and leaves `state` unchanged.
    private func stutterStep(from state: ModelState, allowed: (Int) -> Bool) -> (Int, ModelState)? {
        var node = next[head]
        while !events[node - 1].isCompletion {
            let index = events[node - 1].op
            let op = ops[index]
            if op.isObservation, allowed(index), case .next(let after) = model.step(state, op.input, op.output),
               after == state {
                return (index, after)
            }
            node = next[node]
        }
        return nil
    }
}

/// A fixed-size set of small integers, hashable for the search cache.
struct Bitset: Hashable {
    private var words: [UInt64]

    init(count: Int) { words = Array(repeating: 0, count: (count + 63) / 64) }

    mutating func insert(_ index: Int) { words[index >> 6] |= 1 << UInt64(index & 63) }
    mutating func remove(_ index: Int) { words[index >> 6] &= ~(1 << UInt64(index & 63)) }
    func contains(_ index: Int) -> Bool { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }
    func isSubset(of other: Bitset) -> Bool { zip(words, other.words).allSatisfy { $0 & ~$1 == 0 } }
}
