import FulvaCheck
import FulvaCore

/// The simulated cluster: a coordinator, masters and clients exchanging
/// messages over the faulty network of `World`.
final class Cluster {
    let world: World
    let config: SimulationConfig
    var nodes: [ServerID: Node] = [:]
    let coordinatorID = ServerID(0)
    var coordinator: SimCoordinator!
    var servers: [SimServer] = []
    var counters = SimulationCounters()
    var timeline = MigrationTimeline()
    var operationCounter = 0
    var recorded: [RecordedOperation] = []
    /// Clients keep issuing operations while this says so.
    var keepGoing: () -> Bool = { false }

    init(config: SimulationConfig) {
        self.config = config
        self.world = World(seed: config.seed, network: config.network)
    }

    func add(_ node: Node) { nodes[node.id] = node }

    func trace(_ key: String, _ what: @autoclosure () -> String) {
        if key == config.traceKey { print("\(world.now / 1000)µs \(key): \(what())") }
    }

    /// Sends a message; the network may drop, delay or duplicate it.
    func send(_ message: Message, from sender: ServerID, to receiver: ServerID) {
        guard let node = nodes[receiver] else { return }
        if config.traceKey == "migrations" {
            switch message {
            case .read, .readReply, .mutate, .mutateReply, .getTabletMap, .tabletMap: break
            default: print("\(world.now / 1000)µs \(sender.rawValue)→\(receiver.rawValue): \(String(describing: message).prefix(160))")
            }
        }
        world.transmit { node.receive(message, from: sender) }
    }
}

/// Counters that only the servers see.
public struct SimulationCounters: Hashable, Sendable {
    public var priorityFetches = 0
    public var pullsServed = 0
    public var entriesMoved = 0
    public var completionRecordsHandedOver = 0
    public var duplicateRPCsAnswered = 0
}

/// Re-sends a message until the matching answer arrives. Every receiver in
/// the simulation handles duplicates, as RAMCloud's RPCs must.
final class Resender {
    private var pending: Set<String> = []
    private unowned let cluster: Cluster
    private let owner: ServerID
    let interval: Int64

    init(cluster: Cluster, owner: ServerID, interval: Int64 = 4_000_000) {
        self.cluster = cluster
        self.owner = owner
        self.interval = interval
    }

    func send(_ key: String, _ message: Message, to receiver: ServerID, attempts: Int = 400) {
        pending.insert(key)
        attempt(key, message, receiver, left: attempts)
    }

    func done(_ key: String) { pending.remove(key) }
    func isPending(_ key: String) -> Bool { pending.contains(key) }

    private func attempt(_ key: String, _ message: Message, _ receiver: ServerID, left: Int) {
        guard pending.contains(key), left > 0 else { return }
        cluster.send(message, from: owner, to: receiver)
        cluster.world.after(interval) { [weak self] in self?.attempt(key, message, receiver, left: left - 1) }
    }
}

/// The coordinator and the migration records it keeps (ZooKeeper's role in
/// the real cluster: every phase change is a conditional write).
final class SimCoordinator: Node {
    let id: ServerID
    unowned let cluster: Cluster
    var tabletMap: [Tablet: ServerID]
    var records: [MigrationID: MigrationRecord] = [:]
    lazy var resender = Resender(cluster: cluster, owner: id)
    private var nextMigration: UInt64 = 1
    /// Reverse runs and the migration each one cancels.
    var reverseOf: [MigrationID: MigrationID] = [:]
    var onEnded: ((MigrationRecord) -> Void)?

    init(id: ServerID, cluster: Cluster, tabletMap: [Tablet: ServerID]) {
        self.id = id
        self.cluster = cluster
        self.tabletMap = tabletMap
    }

    /// Conditional write on a record: fails when the phase moved meanwhile.
    private func update(_ m: MigrationID, to phase: MigrationPhase) -> Bool {
        guard let record = records[m], var next = try? record.moved(to: phase, at: cluster.world.now) else {
            return false
        }
        next.revision = record.revision + 1
        records[m] = next
        // The record moved on: the destination got the start.
        resender.done("start \(m)")
        if phase.isTerminal { onEnded?(next) }
        return true
    }

    // MARK: Operator actions

    func startMigration(tablet: Tablet, to destination: ServerID, strategy: Strategy) throws(FulvaError) -> MigrationID {
        guard let source = tabletMap[tablet] else { throw .tabletBusy(tablet, MigrationID(0)) }
        try MigrationRequest.validate(tablet: tablet, source: source, destination: destination,
                                      active: Array(records.values))
        let m = MigrationID(nextMigration)
        nextMigration += 1
        records[m] = MigrationRecord(id: m, tablet: tablet, source: source, destination: destination,
                                     strategy: strategy, createdAt: cluster.world.now)
        resender.send("start \(m)", .startMigration(m, tablet, source: source, strategy, reverse: nil),
                      to: destination)
        return m
    }

    func cancel(_ m: MigrationID) throws(FulvaError) {
        guard let record = records[m] else { throw .illegalTransition(m, from: .done, to: .cancelled) }
        switch try record.cancelAction() {
        case .releaseSource:
            guard update(m, to: .cancelled) else { throw .cancelTooLate(m, records[m]!.phase) }
            resender.send("release \(m)", .release(m), to: record.source)
            resender.send("abandon \(m)", .abandon(m), to: record.destination)
        case .reverse:
            guard update(m, to: .cancelling) else { throw .cancelTooLate(m, records[m]!.phase) }
            let reverse = ReverseRun(forward: m, forwardBound: record.versionBound ?? 0)
            let r = MigrationID(nextMigration)
            nextMigration += 1
            reverseOf[r] = m
            resender.send("start \(r)", .startMigration(r, record.tablet, source: record.destination,
                                                        record.strategy, reverse: reverse),
                          to: record.source)
        }
    }

    // MARK: Messages

    func receive(_ message: Message, from sender: ServerID) {
        switch message {
        case .getTabletMap(let request):
            cluster.send(.tabletMap(request: request, tabletMap), from: id, to: sender)
        case .acknowledged(let m, let what):
            resender.done("\(what) \(m)")
        case .takeOwnership(let m, let bound):
            cluster.send(.ownership(m, granted: grantOwnership(m, bound: bound, to: sender)), from: id, to: sender)
        case .finish(let m):
            cluster.send(.finished(m, granted: finish(m, by: sender)), from: id, to: sender)
        default:
            break
        }
    }

    private func isReverse(_ m: MigrationID) -> Bool { reverseOf[m] != nil }
    private func forward(of m: MigrationID) -> MigrationID { reverseOf[m] ?? m }

    private func grantOwnership(_ m: MigrationID, bound: Version, to sender: ServerID) -> Bool {
        if isReverse(m) {
            guard let record = records[forward(of: m)], record.phase == .cancelling,
                  sender == record.source else { return false }
            tabletMap[record.tablet] = record.source
            return true
        }
        guard let record = records[m] else { return false }
        // A repeated request (its answer was lost) gets the same answer,
        // whatever happened to the record since.
        if record.versionBound != nil {
            return sender == (record.strategy == .source ? record.source : record.destination)
        }
        guard update(m, to: .moving) else { return false }
        records[m]!.versionBound = bound
        if record.strategy != .source { tabletMap[record.tablet] = record.destination }
        if cluster.timeline.startedAt == nil { cluster.timeline.startedAt = record.createdAt }
        return true
    }

    private func finish(_ m: MigrationID, by sender: ServerID) -> Bool {
        if isReverse(m) {
            let f = forward(of: m)
            guard let record = records[f] else { return false }
            if record.phase == .cancelled { return true }
            return update(f, to: .cancelled)
        }
        guard let record = records[m] else { return false }
        if record.phase == .done { return true }
        guard update(m, to: .done) else { return false }
        tabletMap[record.tablet] = record.destination
        return true
    }
}
