import FulvaCheck
import FulvaCore

/// One operation a client issues, before it is split per key.
struct WorkloadOperation {
    enum Body {
        case read
        case mutation(Mutation)
    }
    var kind: OperationKind
    var parts: [(key: String, body: Body)]
}

/// A simulated client: a closed loop of operations, each driven through
/// FulvaCore's client rules, each recorded with its real-time interval.
final class SimClient: Node {
    final class Part {
        enum Machine {
            case read(ClientRead<String>)
            case write(ClientWrite<String>)
        }
        let key: String
        let keyHash: KeyHash
        let mutation: Mutation?
        var machine: Machine
        let rpcID: UInt64?
        var outstanding: [UInt64: ServerID] = [:]
        var values: [ServerID: (Int64?, Version)] = [:]
        var output: RecordedOutput?
        var done = false
        var routing = OperationRouting(roundTrips: 0, replies: 0)
        var timeouts = 0

        init(key: String, keyHash: KeyHash, tableID: UInt64, mutation: Mutation?, rpcID: UInt64?) {
            self.key = key
            self.keyHash = keyHash
            self.mutation = mutation
            self.rpcID = rpcID
            self.machine = mutation == nil
                ? .read(ClientRead(tableID: tableID, key: key, keyHash: keyHash))
                : .write(ClientWrite(tableID: tableID, keyHash: keyHash))
        }

        var hint: MigrationHint? {
            switch machine {
            case .read(let r): return r.hint
            case .write(let w): return w.hint
            }
        }
    }

    final class Pending {
        let operation: WorkloadOperation
        let group: Int
        let invokedAt: Int64
        var parts: [Part] = []
        init(operation: WorkloadOperation, group: Int, invokedAt: Int64) {
            self.operation = operation
            self.group = group
            self.invokedAt = invokedAt
        }
    }

    let id: ServerID
    let index: Int
    unowned let cluster: Cluster
    var table: ClientMigrationTable<String>
    var tabletMap: [Tablet: ServerID]? = nil
    var mapWaiters: [() -> Void] = []
    var mapRequest: UInt64? = nil
    var random: SeededRandom
    var operationsLeft: Int
    var lastSeen: [String: Version] = [:]
    var sequence: UInt64 = 0
    var issued = 0
    var current: Pending?
    var scripted: [WorkloadOperation] = []
    var onIdle: (() -> Void)?
    let keys: [String]

    init(index: Int, cluster: Cluster, operations: Int, keys: [String]) {
        self.index = index
        self.id = ServerID(UInt64(1000 + index))
        self.cluster = cluster
        self.table = ClientMigrationTable(faults: cluster.config.faults)
        self.random = SeededRandom(seed: cluster.config.seed &* 31 &+ UInt64(index))
        self.operationsLeft = operations
        self.keys = keys
    }

    var world: World { cluster.world }
    var config: SimulationConfig { cluster.config }

    // MARK: Workload

    func begin() { world.after(random.between(0, 300_000)) { [weak self] in self?.next() } }

    private func next() {
        if !scripted.isEmpty {
            issue(scripted.removeFirst())
            return
        }
        issued += 1
        let more = operationsLeft > 0 || (cluster.keepGoing() && issued <= config.maxOperationsPerClient)
        guard more else {
            onIdle?()
            return
        }
        operationsLeft = max(0, operationsLeft - 1)
        issue(makeOperation())
    }

    private func uniqueValue() -> Int64 {
        sequence += 1
        return Int64(index + 1) * 1_000_000 + Int64(sequence)
    }

    private func pickKeys(_ n: Int) -> [String] {
        var chosen: [String] = []
        while chosen.count < n {
            let k = keys.randomElement(using: &random)!
            if !chosen.contains(k) { chosen.append(k) }
        }
        return chosen
    }

    private func conditional(on key: String) -> RejectRules {
        if let seen = lastSeen[key], seen != 0, random.chance(0.8) {
            return RejectRules(givenVersion: seen, versionNeGiven: true)
        }
        return random.chance(0.5) ? RejectRules(exists: true) : RejectRules(doesntExist: true)
    }

    func makeOperation() -> WorkloadOperation {
        let key = pickKeys(1)[0]
        if random.chance(config.readShare) {
            if random.chance(0.75) { return WorkloadOperation(kind: .read, parts: [(key, .read)]) }
            return WorkloadOperation(kind: .multiRead, parts: pickKeys(Int(random.between(2, 4))).map { ($0, .read) })
        }
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<22:
            return WorkloadOperation(kind: .write, parts: [(key, .mutation(.write(value: uniqueValue(), rules: nil)))])
        case 22..<35:
            return WorkloadOperation(kind: .remove, parts: [(key, .mutation(.remove(rules: nil)))])
        case 35..<45:
            return WorkloadOperation(kind: .conditionalRemove,
                                     parts: [(key, .mutation(.remove(rules: conditional(on: key))))])
        case 45..<63:
            return WorkloadOperation(kind: .conditionalWrite,
                                     parts: [(key, .mutation(.write(value: uniqueValue(), rules: conditional(on: key))))])
        case 63..<85:
            let rules: RejectRules? = random.chance(0.2) ? RejectRules(doesntExist: true) : nil
            return WorkloadOperation(kind: .increment,
                                     parts: [(key, .mutation(.increment(delta: random.between(1, 9), rules: rules)))])
        default:
            return WorkloadOperation(kind: .multiWrite, parts: pickKeys(Int(random.between(2, 4))).map {
                ($0, .mutation(.write(value: uniqueValue(), rules: nil)))
            })
        }
    }

    func issue(_ operation: WorkloadOperation) {
        let pending = Pending(operation: operation, group: cluster.nextOperationID(), invokedAt: world.now)
        current = pending
        for (key, body) in operation.parts {
            var mutation: Mutation? = nil
            var rpcID: UInt64? = nil
            if case .mutation(let m) = body {
                mutation = m
                sequence += 1
                rpcID = (UInt64(index + 1) << 32) | sequence
            }
            pending.parts.append(Part(key: key, keyHash: simulatedKeyHash(tableID: config.tableID, key: key),
                                      tableID: config.tableID, mutation: mutation, rpcID: rpcID))
        }
        for part in pending.parts { start(part) }
    }

    // MARK: Driving one part

    private func owner(of part: Part) -> ServerID? {
        tabletMap?.first { $0.key.contains(tableID: config.tableID, keyHash: part.keyHash) }?.value
    }

    private func start(_ part: Part) {
        guard !part.done else { return }
        if world.now - current!.invokedAt > config.operationDeadline {
            part.output = nil
            return complete(part)
        }
        let step: ClientStep
        switch part.machine {
        case .read(var r):
            step = r.start(table: table, owner: owner(of: part))
            part.machine = .read(r)
        case .write(var w):
            step = w.start(table: table, owner: owner(of: part))
            part.machine = .write(w)
        }
        follow(step, part)
    }

    private func follow(_ step: ClientStep, _ part: Part) {
        for tablet in table.takeFlushes() { tabletMap?[tablet] = nil }
        guard !part.done else { return }
        switch step {
        case .send(let servers):
            part.routing.roundTrips += 1
            var sent: [UInt64] = []
            for server in servers {
                let request = world.requestID()
                part.outstanding[request] = server
                sent.append(request)
                if let mutation = part.mutation {
                    cluster.send(.mutate(request: request, rpcID: part.rpcID!, key: part.key, mutation, hint: part.hint),
                                 from: id, to: server)
                } else {
                    cluster.send(.read(request: request, key: part.key, hint: part.hint), from: id, to: server)
                }
            }
            world.after(config.attemptTimeout) { [weak self, part] in
                guard let self, !part.done, sent.contains(where: { part.outstanding[$0] != nil }) else { return }
                part.outstanding.removeAll()
                part.timeouts += 1
                self.start(part)
            }
        case .wait:
            break
        case .complete(let server):
            if part.mutation == nil, let (value, version) = part.values[server], let value {
                part.output = .found(value: value, version: version)
                lastSeen[part.key] = version
            }
            complete(part)
        case .completeAbsent:
            part.output = .absent
            lastSeen[part.key] = 0
            complete(part)
        case .refreshMap:
            part.outstanding.removeAll()
            part.routing.roundTrips += 1
            refreshMap { [weak self] in self?.start(part) }
        case .retryLater:
            part.outstanding.removeAll()
            world.after(random.between(100_000, 500_000)) { [weak self] in self?.start(part) }
        }
    }

    private func refreshMap(then continuation: @escaping () -> Void) {
        tabletMap = nil
        mapWaiters.append(continuation)
        if mapRequest == nil { requestMap() }
    }

    private func requestMap() {
        let request = world.requestID()
        mapRequest = request
        cluster.send(.getTabletMap(request: request), from: id, to: cluster.coordinatorID)
        world.after(config.attemptTimeout) { [weak self] in
            guard let self, self.mapRequest == request else { return }
            self.requestMap()
        }
    }

    private func complete(_ part: Part) {
        part.done = true
        part.outstanding.removeAll()
        guard let pending = current, pending.parts.allSatisfy(\.done) else { return }
        let now = world.now
        for part in pending.parts {
            let input: RecordedInput
            switch part.mutation {
            case nil: input = .read
            case .write(let value, let rules)?: input = .write(value: value, rejectRules: rules.map(record))
            case .remove(let rules)?: input = .remove(rejectRules: rules.map(record))
            case .increment(let delta, let rules)?: input = .increment(delta: delta, rejectRules: rules.map(record))
            }
            if case .read(let r) = part.machine { part.routing.dualRead = r.dualRead }
            cluster.record(RecordedOperation(
                id: cluster.nextOperationID(), client: index, group: pending.group, kind: pending.operation.kind,
                rpcID: part.rpcID, key: part.key,
                onMigratingTablet: config.migratingTablet.contains(tableID: config.tableID, keyHash: part.keyHash),
                input: input, output: part.output, invokedAt: pending.invokedAt, completedAt: now,
                routing: part.routing))
        }
        current = nil
        world.after(random.between(0, config.thinkTime)) { [weak self] in self?.next() }
    }

    private func record(_ rules: RejectRules) -> RecordedRejectRules {
        RecordedRejectRules(givenVersion: rules.givenVersion, doesntExist: rules.doesntExist, exists: rules.exists,
                            versionLeGiven: rules.versionLeGiven, versionNeGiven: rules.versionNeGiven)
    }

    // MARK: Replies

    func receive(_ message: Message, from sender: ServerID) {
        switch message {
        case .tabletMap(let request, let map):
            guard request == mapRequest else { return }
            mapRequest = nil
            tabletMap = map
            let waiters = mapWaiters
            mapWaiters.removeAll()
            waiters.forEach { $0() }
        case .readReply(let request, let status, let tag, let priorityFetched):
            guard let part = current?.parts.first(where: { $0.outstanding[request] != nil }),
                  case .read(var read) = part.machine else { return }
            let server = part.outstanding.removeValue(forKey: request)!
            note(tag: tag, priorityFetched: priorityFetched, part)
            let step: ClientStep
            switch status {
            case .answer(let answer, let value):
                switch answer {
                case .object(let v), .notYetMoved(stale: .object(let v)?): part.values[server] = (value, v)
                default: break
                }
                step = read.received(answer, tag: tag, from: server, table: &table)
            case .unknownTablet:
                step = read.unknownTablet(tag: tag, from: server, table: &table)
            case .retry:
                if let tag { table.learn(tag) }
                step = read.retry(from: server)
            }
            part.machine = .read(read)
            follow(step, part)
        case .mutateReply(let request, let status, let tag, let priorityFetched):
            guard let part = current?.parts.first(where: { $0.outstanding[request] != nil }),
                  case .write(var write) = part.machine else { return }
            let server = part.outstanding.removeValue(forKey: request)!
            note(tag: tag, priorityFetched: priorityFetched, part)
            let step: ClientStep
            switch status {
            case .done(let outcome):
                part.output = output(of: outcome, key: part.key)
                step = write.executed(tag: tag, from: server, table: &table)
            case .unknownTablet:
                step = write.unknownTablet(tag: tag, from: server, table: &table)
            case .retry:
                if let tag { table.learn(tag) }
                step = .retryLater
            }
            part.machine = .write(write)
            follow(step, part)
        default:
            break
        }
    }

    private func note(tag: MigrationTag?, priorityFetched: Bool, _ part: Part) {
        part.routing.replies += 1
        part.routing.progressBytes += tag?.encodedSize ?? 0
        if priorityFetched { part.routing.priorityFetches += 1 }
    }

    private func output(of outcome: MutationOutcome, key: String) -> RecordedOutput {
        switch outcome {
        case .written(let v):
            lastSeen[key] = v
            return .written(version: v)
        case .removed(let v):
            lastSeen[key] = 0
            return .removed(version: v)
        case .incremented(let value, let v):
            lastSeen[key] = v
            return .incremented(value: value, version: v)
        case .rejected(let why):
            switch why {
            case .objectDoesntExist: return .rejected(.objectDoesntExist)
            case .objectExists: return .rejected(.objectExists)
            case .wrongVersion: return .rejected(.wrongVersion)
            }
        }
    }
}
