import ArgumentParser
import FulvaCheck
import FulvaCore
import FulvaSimulation

/// Runs seeded simulations and prints, per strategy, the figures a migration
/// is judged by, computed from the recorded client histories.
@main
struct SimulationReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulva-sim-report",
        abstract: "Run the deterministic migration simulation and report per-strategy figures.",
        discussion: """
            Every run is checked for linearizability; the exit status is 1 when a \
            history of fulva or rocksteady is not linearizable or has failed operations.

            Examples:
              fulva-sim-report --seeds 200
              fulva-sim-report --strategy fulva --seed 17 --verbose
              fulva-sim-report --strategy fulva --fault watermarkOnReceipt --seeds 500
            """)

    @Option(help: "Runs per strategy.") var seeds = 100
    @Option(help: "First seed.") var seed: UInt64 = 1
    @Option(help: "Strategies to run: fulva, rocksteady, source (repeatable).")
    var strategy: [String] = Strategy.allCases.map(\.rawValue)
    @Option(help: "Scenario (default: chosen by seed): \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")).")
    var scenario: String?
    @Option(help: "Re-introduce a known bug: \(ProtocolFaults.named.map(\.0).joined(separator: ", ")).")
    var fault: [String] = []
    @Option(help: "Network: mixed (chosen by seed), calm, lossy or stragglers.") var network = "mixed"
    @Flag(help: "Print every run's figures and any violation in full.") var verbose = false
    @Option(help: "Print every server-side event on this key.") var trace: String?

    mutating func run() throws {
        let strategies = try strategy.map { (name: String) throws -> Strategy in
            do throws(FulvaError) { return try Strategy(parsing: name) } catch { throw ValidationError(error.description) }
        }
        var faults = ProtocolFaults.none
        for name in fault {
            guard let f = ProtocolFaults.named.first(where: { $0.0 == name })?.1 else {
                throw ValidationError("unknown fault '\(name)'")
            }
            faults.insert(f)
        }
        let chosenScenario = try scenario.map { (name: String) throws -> Scenario in
            guard let s = Scenario(rawValue: name) else { throw ValidationError("unknown scenario '\(name)'") }
            return s
        }
        let networks: [String: NetworkFaults] = ["calm": .calm, "lossy": NetworkFaults(), "stragglers": .stragglers]
        guard network == "mixed" || networks[network] != nil else {
            throw ValidationError("unknown network '\(network)' (mixed, calm, lossy, stragglers)")
        }
        var failedAny = false
        for strategy in strategies {
            var aggregate = Aggregate()
            for s in seed..<(seed + UInt64(seeds)) {
                var config = SimulationConfig(seed: s, strategy: strategy, scenario: chosenScenario, faults: faults)
                config.traceKey = trace
                if let chosen = networks[network] { config.network = chosen }
                let result = Simulation.run(config)
                let check = LinearizabilityChecker.check(result.history)
                let figures = HistoryFigures(result.history)
                aggregate.add(result, figures, linearizable: check.isLinearizable)
                if verbose || !check.isLinearizable || figures.failedOperations > 0 {
                    print("[\(strategy) seed \(s) \(config.scenario)] migrations: \(result.migrations.map { "\($0.0.rawValue)=\($0.1)" }.joined(separator: ",")) overlap \(result.operationsOverlappingMigration)/\(result.history.operations.count) failed \(figures.failedOperations)")
                }
                if verbose { print(figures.description) }
                if !check.isLinearizable && verbose { print(check.description) }
            }
            print(aggregate.report(strategy: strategy, seeds: seeds))
            if strategy != Strategy.source && (aggregate.nonLinearizable > 0 || aggregate.failed > 0) { failedAny = true }
        }
        if failedAny { throw ExitCode(1) }
    }
}

/// Figures summed over all runs of one strategy.
struct Aggregate {
    var runs = 0
    var nonLinearizable = 0
    var operations = 0
    var failed = 0
    var reads = 0
    var dualReads = 0
    var priorityFetches = 0
    var progressBytes = 0
    var replies = 0
    var roundTrips: [OperationKind: (sum: Int, count: Int, max: Int, single: Int)] = [:]
    var longestGaps: [OperationKind: [Int64]] = [:]
    var overlapping = 0
    var fewestOperations = Int.max
    var smallestOverlapShare = 1.0

    mutating func add(_ result: SimulationResult, _ figures: HistoryFigures, linearizable: Bool) {
        runs += 1
        if !linearizable { nonLinearizable += 1 }
        operations += figures.totalOperations
        failed += figures.failedOperations
        overlapping += result.operationsOverlappingMigration
        fewestOperations = min(fewestOperations, result.history.operations.count)
        smallestOverlapShare = min(smallestOverlapShare,
                                   Double(result.operationsOverlappingMigration) / Double(max(1, result.history.operations.count)))
        for op in result.history.operations where op.onMigratingTablet {
            if op.kind == .read || op.kind == .multiRead {
                reads += 1
                if op.routing.dualRead { dualReads += 1 }
            }
            var rt = roundTrips[op.kind] ?? (0, 0, 0, 0)
            rt.sum += op.routing.roundTrips
            rt.count += 1
            rt.max = max(rt.max, op.routing.roundTrips)
            if op.routing.roundTrips == 1 { rt.single += 1 }
            roundTrips[op.kind] = rt
            priorityFetches += op.routing.priorityFetches
            progressBytes += op.routing.progressBytes
            replies += op.routing.replies
        }
        for kind in figures.kinds {
            if let gap = kind.longestGapInMigration { longestGaps[kind.kind, default: []].append(gap) }
        }
    }

    func report(strategy: Strategy, seeds: Int) -> String {
        func ms(_ ns: Int64) -> String { String(format: "%.2f ms", Double(ns) / 1e6) }
        var lines: [String] = []
        lines.append("== \(strategy): \(runs) runs, \(operations) operations (\(overlapping) overlapping a migration)")
        lines.append("   non-linearizable runs: \(nonLinearizable)   failed operations: \(failed)")
        lines.append(String(format: "   per run: at least %d operations, at least %.0f%% of them overlapping a migration",
                            fewestOperations, smallestOverlapShare * 100))
        let share = reads == 0 ? 0 : Double(dualReads) / Double(reads)
        lines.append(String(format: "   reads sent to both servers: %.1f%%   priority fetches: %d   progress bytes per reply: %.1f",
                            share * 100, priorityFetches, replies == 0 ? 0 : Double(progressBytes) / Double(replies)))
        lines.append("   operations on the migrating tablet:")
        lines.append("   kind               round trips (mean / max / share in one)   longest gap during migration (median run / worst run)")
        for kind in OperationKind.allCases {
            guard let rt = roundTrips[kind], rt.count > 0 else { continue }
            let gaps = (longestGaps[kind] ?? []).sorted()
            let gap = gaps.isEmpty ? "-" : "\(ms(gaps[gaps.count / 2])) / \(ms(gaps.last!))"
            lines.append("   \(kind.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0)) "
                + String(format: "%5.2f / %-3d / %5.1f%%", Double(rt.sum) / Double(rt.count), rt.max,
                         100 * Double(rt.single) / Double(rt.count))
                + "                   \(gap)")
        }
        return lines.joined(separator: "\n")
    }
}
