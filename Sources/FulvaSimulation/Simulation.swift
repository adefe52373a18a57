import FulvaCheck
import FulvaCore

/// What happens to the tablet in one run. Every scenario ends with a
/// migration that runs to completion, so most operations overlap one.
public enum Scenario: String, Hashable, Sendable, CaseIterable {
    /// S→D, straight back D→S, and S→D again.
    case migrateAndBack
    /// Cancelled while the source freezes the tablet (the cancel may also
    /// lose the race), then migrated there and back.
    case cancelDuringPrepare
    /// Cancelled while data moves (the protocol runs backwards), then
    /// migrated there and back.
    case cancelWhileMoving
    /// S→D, then D→S cancelled while it moves, then D→S again.
    case migrateBackAndCancel

    public static func forSeed(_ seed: UInt64) -> Scenario { allCases[Int(seed % UInt64(allCases.count))] }
}

public struct SimulationConfig: Sendable {
    public var seed: UInt64
    public var strategy: Strategy
    public var scenario: Scenario
    public var faults: ProtocolFaults = .none
    public var network: NetworkFaults
    public var clients = 5
    public var keys = 24
    /// Share of operations that read (the rest write, remove or increment).
    public var readShare: Double
    /// Each client runs at least this many operations, keeps going until
    /// the scenario's migrations ended, then runs `tailOperations` more.
    public var operationsPerClient = 40
    public var tailOperations = 5
    public var maxOperationsPerClient = 1000
    public var tableID: UInt64 = 1
    /// The part of the table that migrates; the rest stays on the source.
    public var migratingTablet = Tablet(tableID: 1, range: try! KeyHashRange(start: 0, end: 0xBFFF_FFFF_FFFF_FFFF))
    public var otherTablet = Tablet(tableID: 1, range: try! KeyHashRange(start: 0xC000_0000_0000_0000, end: .max))
    public var bucketCount: UInt64 = 16
    public var tuning: DestinationMigration.Tuning
    public var pullEntries: Int
    public var pullService: ClosedRange<Int64>
    /// About how long the bulk pulls of one migration take (nanoseconds).
    public var migrationPace: Int64 = 24_000_000
    public var pullTimeout: Int64
    /// How long a source takes to drop a tablet after the destination finished.
    public var dropDelay: ClosedRange<Int64> = 20_000...3_000_000
    public var attemptTimeout: Int64 = 3_000_000
    /// Longest wait of a read in a busy source's queue.
    public var sourceReadQueueing: Int64 = 2_000_000
    public var operationDeadline: Int64 = 400_000_000
    public var thinkTime: Int64 = 300_000
    public var migrationStartsAt: Int64 = 2_500_000
    /// Prints every server-side event on this key (debugging aid).
    public var traceKey: String? = nil

    public init(seed: UInt64, strategy: Strategy, scenario: Scenario? = nil, faults: ProtocolFaults = .none) {
        self.seed = seed
        self.strategy = strategy
        self.scenario = scenario ?? .forSeed(seed)
        self.faults = faults
        self.network = .forSeed(seed)
        // Half the runs write heavily, half mostly read (keys then stay
        // unmoved until late, and dual reads meet the end of the migration).
        readShare = (seed / 128) % 2 == 0 ? 0.37 : 0.85
        // Vary how the destination cuts the work, and pace the pulls so a
        // migration lasts about as long whatever the cut.
        let shapes: [(partitions: Int, bucketsPerBatch: UInt64, depth: Int, entries: Int)] =
            [(4, 1, 1, 3), (1, 8, 1, 100), (2, 1, 1, 3), (4, 2, 2, 3), (2, 4, 1, 100), (1, 1, 2, 3), (8, 1, 1, 3),
             (2, 2, 1, 2)]
        let shape = shapes[Int((seed / 16) % UInt64(shapes.count))]
        tuning = DestinationMigration.Tuning(partitions: shape.partitions, bucketsPerBatch: shape.bucketsPerBatch,
                                             pipelineDepth: shape.depth)
        pullEntries = shape.entries
        // Operations are slow when messages straggle: migrations slow down
        // as much, so that most operations still overlap one.
        if network.straggler > 0.1 { migrationPace *= 3 }
        let rounds = max(1, Int64(bucketCount) / Int64(UInt64(shape.partitions) * shape.bucketsPerBatch * UInt64(shape.depth)))
        let perPull = migrationPace / rounds
        pullService = (perPull / 2)...(perPull * 3 / 2)
        // A pull is given up (and sent again) only when clearly lost.
        pullTimeout = perPull * 3 + 5_000_000
    }
}

/// Everything a run produced.
public struct SimulationResult: Sendable {
    public var config: SimulationConfig
    public var history: History
    public var counters: SimulationCounters
    /// Final phase of each migration started in the run, in order.
    public var migrations: [(MigrationID, MigrationPhase)]
    /// Operations whose interval overlaps a migration.
    public var operationsOverlappingMigration: Int
    /// Per server: entries it still holds of the migrating tablet, and whether it owns it.
    public var tabletHolders: [(server: ServerID, entries: Int, owns: Bool)]
    public var finishedCleanly: Bool
    public var events: Int
}

extension Cluster {
    func nextOperationID() -> Int {
        operationCounter += 1
        return operationCounter
    }

    func record(_ operation: RecordedOperation) { recorded.append(operation) }
}

public enum Simulation {
    /// Runs one seeded simulation: load, clients, the scenario's migrations,
    /// then a final read of every key.
    public static func run(_ config: SimulationConfig) -> SimulationResult {
        let cluster = Cluster(config: config)
        let source = ServerID(1), destination = ServerID(2)
        let coordinator = SimCoordinator(id: cluster.coordinatorID, cluster: cluster,
                                         tabletMap: [config.migratingTablet: source, config.otherTablet: source])
        cluster.coordinator = coordinator
        cluster.add(coordinator)
        // Different safeVersions, as on real masters that served other tables before.
        let servers = [SimServer(id: source, cluster: cluster, tableID: config.tableID, bucketCount: config.bucketCount,
                                 safeVersion: 40),
                       SimServer(id: destination, cluster: cluster, tableID: config.tableID,
                                 bucketCount: config.bucketCount, safeVersion: 7)]
        servers.forEach(cluster.add)
        cluster.servers = servers
        servers[0].roles = [config.migratingTablet: .normal, config.otherTablet: .normal]

        // The data set: every key loaded, a third of them overwritten a few
        // times, so versions run ahead of the segment safeVersion.
        let keys = (0..<config.keys).map { "key\($0)" }
        var initial: [String: RecordedInitialObject] = [:]
        var loadRandom = SeededRandom(seed: config.seed ^ 0xA5A5)
        for (i, key) in keys.enumerated() where i % 7 != 6 {
            var version = servers[0].load(key: key, value: Int64(i))
            if loadRandom.chance(0.35) {
                for _ in 0..<Int(loadRandom.between(1, 4)) { version = servers[0].load(key: key, value: Int64(i)) }
            }
            initial[key] = RecordedInitialObject(value: Int64(i), version: version)
        }

        let clients = (0..<config.clients).map {
            SimClient(index: $0, cluster: cluster, operations: config.operationsPerClient, keys: keys)
        }
        clients.forEach(cluster.add)
        var scenarioDone = false
        cluster.keepGoing = { !scenarioDone }

        var started: [MigrationID] = []
        var migrationsEndedAt: Int64 = 0
        var idleClients = 0
        var finalReadsDone = false
        let world = cluster.world
        var scenarioRandom = SeededRandom(seed: config.seed ^ 0x5EED)

        func start(from: ServerID, to: ServerID) -> MigrationID? {
            guard let m = try? coordinator.startMigration(tablet: config.migratingTablet, to: to,
                                                          strategy: config.strategy) else { return nil }
            started.append(m)
            return m
        }
        func cancelLater(_ m: MigrationID, within range: ClosedRange<Int64>) {
            world.after(scenarioRandom.between(range.lowerBound, range.upperBound)) {
                try? coordinator.cancel(m)
            }
        }
        func cancelWhenMoving(_ m: MigrationID) {
            // Poll the record; cancel at a random point of the move.
            func poll() {
                guard let record = coordinator.records[m], !record.phase.isTerminal else { return }
                if record.phase == .moving || (config.strategy == .source && record.phase == .preparing) {
                    cancelLater(m, within: 0...9_000_000)
                } else {
                    world.after(200_000, poll)
                }
            }
            poll()
        }

        func endScenario() {
            scenarioDone = true
            for client in clients { client.operationsLeft = max(client.operationsLeft, config.tailOperations) }
        }
        // Three migrations per run (a cancelled one can be short), so that
        // most operations overlap one.
        let planned = 3
        coordinator.onEnded = { record in
            migrationsEndedAt = world.now
            guard started.count < planned else { return endScenario() }
            world.after(500_000) {
                let owner = coordinator.tabletMap[config.migratingTablet] ?? source
                let other = owner == source ? destination : source
                guard let next = start(from: owner, to: other) else { return endScenario() }
                if config.scenario == .migrateBackAndCancel && record.phase == .done { cancelWhenMoving(next) }
            }
        }

        world.after(config.migrationStartsAt) {
            guard let m = start(from: source, to: destination) else { return endScenario() }
            switch config.scenario {
            case .cancelDuringPrepare: cancelLater(m, within: 0...600_000)
            case .cancelWhileMoving: cancelWhenMoving(m)
            case .migrateAndBack, .migrateBackAndCancel: break
            }
        }

        // When every client is done and every migration has ended, one client
        // reads every key: the checker then vouches for the final data too.
        func allMigrationsEnded() -> Bool {
            scenarioDone && started.allSatisfy { coordinator.records[$0]?.phase.isTerminal == true }
        }
        func finalReads() {
            guard !finalReadsDone else { return }
            if !allMigrationsEnded() {
                world.after(1_000_000, finalReads)
                return
            }
            finalReadsDone = true
            let reader = clients[0]
            reader.scripted = keys.map { WorkloadOperation(kind: .read, parts: [($0, .read)]) }
            reader.onIdle = nil
            reader.operationsLeft = 0
            reader.begin()
        }
        for client in clients {
            client.onIdle = {
                idleClients += 1
                if idleClients == clients.count { finalReads() }
            }
            client.begin()
        }

        let clean = world.run(until: 3_000_000_000, maxEvents: 3_000_000)

        var history = History(operations: cluster.recorded, initialValues: initial)
        history.timeline = MigrationTimeline(startedAt: config.migrationStartsAt,
                                             endedAt: max(migrationsEndedAt, config.migrationStartsAt))
        let window = history.timeline.startedAt!...history.timeline.endedAt!
        let overlapping = history.operations.filter {
            $0.invokedAt <= window.upperBound && $0.completedAt >= window.lowerBound
        }.count
        let holders = servers.map { server -> (ServerID, Int, Bool) in
            let entries = server.store.keys.filter {
                config.migratingTablet.contains(tableID: config.tableID, keyHash: server.hash($0))
            }.count
            return (server.id, entries, coordinator.tabletMap[config.migratingTablet] == server.id)
        }
        return SimulationResult(
            config: config, history: history, counters: cluster.counters,
            migrations: started.map { ($0, coordinator.records[$0]?.phase ?? .failed) },
            operationsOverlappingMigration: overlapping,
            tabletHolders: holders.map { (server: $0.0, entries: $0.1, owns: $0.2) },
            finishedCleanly: clean && finalReadsDone, events: world.eventsRun)
    }
}
