import FulvaCheck
import FulvaCore

/// Shorthand for hand-written histories: `op(3, .read, .absent, 10, 20)`.
/// A nil output (no reply) gets no completion time worth mentioning.
func op(_ id: Int, _ input: RecordedInput, _ output: RecordedOutput?, _ invokedAt: Int64, _ completedAt: Int64 = .max,
        key: String = "k", client: Int? = nil, kind: OperationKind? = nil, onMigratingTablet: Bool = true,
        routing: OperationRouting = OperationRouting()) -> RecordedOperation {
    RecordedOperation(id: id, client: client ?? id, kind: kind ?? input.defaultKind, key: key,
                      onMigratingTablet: onMigratingTablet, input: input, output: output,
                      invokedAt: invokedAt, completedAt: completedAt, routing: routing)
}

func write(_ value: Int64, _ rules: RecordedRejectRules? = nil) -> RecordedInput { .write(value: value, rejectRules: rules) }
func increment(_ delta: Int64, _ rules: RecordedRejectRules? = nil) -> RecordedInput {
    .increment(delta: delta, rejectRules: rules)
}
let remove = RecordedInput.remove(rejectRules: nil)
func found(_ value: Int64, _ version: UInt64) -> RecordedOutput { .found(value: value, version: version) }
func written(_ version: UInt64) -> RecordedOutput { .written(version: version) }
func incremented(_ value: Int64, _ version: UInt64) -> RecordedOutput { .incremented(value: value, version: version) }

extension RecordedInput {
    var defaultKind: OperationKind {
        switch self {
        case .read: .read
        case .write(_, let rules): rules == nil ? .write : .conditionalWrite
        case .remove(let rules): rules == nil ? .remove : .conditionalRemove
        case .increment: .increment
        }
    }
}

func checkKey(_ ops: [RecordedOperation], initial: RecordedInitialObject? = nil) -> KeyCheckResult {
    LinearizabilityChecker.checkKey("k", operations: ops, initial: initial)
}

