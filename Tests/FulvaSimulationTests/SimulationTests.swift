import FulvaCheck
import FulvaCore
import FulvaSimulation
import Testing

/// Seeds per strategy; every run's history goes through the checker.
let seedsPerStrategy: UInt64 = 2000

@Suite struct SimulationLinearizability {
    @Test(arguments: Strategy.allCases)
    func everyHistoryIsLinearizable(strategy: Strategy) {
        var nonLinearizable: [UInt64] = []
        var withFailures: [UInt64] = []
        var badShape: [UInt64] = []
        var leftovers: [UInt64] = []
        var scenariosSeen: Set<Scenario> = []
        for seed in 1...seedsPerStrategy {
            let config = SimulationConfig(seed: seed, strategy: strategy)
            let result = Simulation.run(config)
            scenariosSeen.insert(config.scenario)
            let history = result.history
            if !LinearizabilityChecker.check(history).isLinearizable { nonLinearizable.append(seed) }
            if history.operations.contains(where: \.failed) { withFailures.append(seed) }
            let keys = Set(history.operations.map(\.key))
            let clients = Set(history.operations.map(\.client))
            if !result.finishedCleanly || clients.count < 3 || keys.count < 20 || history.operations.count < 200
                || result.operationsOverlappingMigration * 2 < history.operations.count {
                badShape.append(seed)
            }
            // The tablet lives on exactly one server once the migrations are over.
            if result.tabletHolders.contains(where: { !$0.owns && $0.entries > 0 })
                || result.tabletHolders.filter(\.owns).count != 1 {
                leftovers.append(seed)
            }
        }
        #expect(nonLinearizable.isEmpty, "\(strategy): non-linearizable seeds \(nonLinearizable.prefix(10))")
        #expect(withFailures.isEmpty, "\(strategy): seeds with failed operations \(withFailures.prefix(10))")
        #expect(badShape.isEmpty, "\(strategy): seeds below 3 clients/20 keys/200 operations/half overlapping \(badShape.prefix(10))")
        #expect(leftovers.isEmpty, "\(strategy): seeds where a non-owner still holds the tablet \(leftovers.prefix(10))")
        #expect(scenariosSeen == Set(Scenario.allCases))
    }
}

@Suite struct ReintroducedBugsAreCaught {
    /// The first seed whose fulva history the checker rejects, if any.
    static func firstCaught(_ faults: ProtocolFaults) -> UInt64? {
        for seed in 1...seedsPerStrategy {
            let result = Simulation.run(SimulationConfig(seed: seed, strategy: .fulva, faults: faults))
            if !LinearizabilityChecker.check(result.history).isLinearizable { return seed }
        }
        return nil
    }

    @Test(arguments: ProtocolFaults.named.map(\.0))
    func caughtWithinTheSeeds(fault: String) {
        let faults = ProtocolFaults.named.first { $0.0 == fault }!.1
        let seed = Self.firstCaught(faults)
        #expect(seed != nil, "\(fault) was not caught in \(seedsPerStrategy) seeds")
        if let seed { print("\(fault): caught at seed \(seed)") }
    }
}

/// The figures of the report, compared across strategies on the same seeds
/// (the calm-network ones, where round trips are not inflated by losses).
@Suite struct StrategyFigures {
    struct Figures {
        var oneRoundTripReads = 0.0
        var oneRoundTripBlindWrites = 0.0
        var readsWithExtraRoundTrips = 0.0
        var dualReadShare = 0.0
        var priorityFetches = 0
        var longestWriteGap: Int64 = 0
        /// Median over runs of the longest interval in which no operation
        /// on the migrating tablet completed.
        var medianLongestGap: Int64 = 0
        var failed = 0
    }

    static func figures(_ strategy: Strategy) -> Figures {
        var reads = 0, oneReads = 0, writes = 0, oneWrites = 0, dual = 0
        var f = Figures()
        var gaps: [Int64] = []
        for seed in (1...400).map(UInt64.init) where (seed / 4) % 4 == 1 {
            let result = Simulation.run(SimulationConfig(seed: seed, strategy: strategy))
            let history = result.history
            guard let start = history.timeline.startedAt, let end = history.timeline.endedAt else { continue }
            f.failed += history.operations.filter(\.failed).count
            for op in history.operations where op.onMigratingTablet && op.invokedAt >= start && op.completedAt <= end {
                switch op.kind {
                case .read:
                    reads += 1
                    if op.routing.roundTrips == 1 { oneReads += 1 }
                    if op.routing.dualRead { dual += 1 }
                case .write:
                    writes += 1
                    if op.routing.roundTrips == 1 { oneWrites += 1 }
                default: break
                }
                f.priorityFetches += op.routing.priorityFetches
            }
            let completions = history.operations.filter { $0.onMigratingTablet && $0.completedAt >= start && $0.completedAt <= end }
                .map(\.completedAt).sorted()
            gaps.append(zip(completions, completions.dropFirst()).map { $1 - $0 }.max() ?? 0)
            let figures = HistoryFigures(history)
            if let gap = figures.kinds.first(where: { $0.kind == .write })?.longestGapInMigration {
                f.longestWriteGap = max(f.longestWriteGap, gap)
            }
        }
        f.oneRoundTripReads = Double(oneReads) / Double(max(1, reads))
        f.oneRoundTripBlindWrites = Double(oneWrites) / Double(max(1, writes))
        f.readsWithExtraRoundTrips = 1 - f.oneRoundTripReads
        f.dualReadShare = Double(dual) / Double(max(1, reads))
        gaps.sort()
        f.medianLongestGap = gaps.isEmpty ? 0 : gaps[gaps.count / 2]
        return f
    }

    @Test func fulvaAvoidsExtraRoundTripsAndDowntime() {
        let fulva = Self.figures(.fulva), rocksteady = Self.figures(.rocksteady), source = Self.figures(.source)
        print("one-round-trip reads: fulva \(fulva.oneRoundTripReads) rocksteady \(rocksteady.oneRoundTripReads) source \(source.oneRoundTripReads)")
        print("one-round-trip blind writes: fulva \(fulva.oneRoundTripBlindWrites) rocksteady \(rocksteady.oneRoundTripBlindWrites) source \(source.oneRoundTripBlindWrites)")
        print("dual reads: fulva \(fulva.dualReadShare); priority fetches: fulva \(fulva.priorityFetches) rocksteady \(rocksteady.priorityFetches)")
        print("median longest gap of the tablet (ns): fulva \(fulva.medianLongestGap) rocksteady \(rocksteady.medianLongestGap) source \(source.medianLongestGap)")
        print("longest write gap during migration (ns): fulva \(fulva.longestWriteGap) rocksteady \(rocksteady.longestWriteGap) source \(source.longestWriteGap)")
        #expect(fulva.failed == 0 && rocksteady.failed == 0)
        // fulva: reads and blind writes take one round trip (the exceptions
        // are a client's first contact with a migration and its end).
        #expect(fulva.oneRoundTripReads >= 0.9)
        #expect(fulva.oneRoundTripBlindWrites >= 0.9)
        #expect(fulva.dualReadShare > 0)
        // rocksteady pays a priority pull and a retry for every read of a
        // key not yet moved; fulva fetches only for read-modify-writes.
        #expect(rocksteady.readsWithExtraRoundTrips >= 1.5 * fulva.readsWithExtraRoundTrips)
        #expect(rocksteady.priorityFetches >= 2 * fulva.priorityFetches)
        // The source-driven migration freezes the tablet at its end.
        #expect(Double(source.medianLongestGap) > 1.5 * Double(fulva.medianLongestGap))
    }
}
