import FulvaCore

/// A simulated RAMCloud master: a hash table of one table, a segment
/// safeVersion, RIFL completion records, and the migration roles of its
/// tablets. Every protocol decision is FulvaCore's; this class only moves
/// entries around as the real master's C++ does.
final class SimServer: Node {
    enum Role {
        case normal
        case source(SourceMigration, forwardFetched: Set<String>)
        case destination(DestinationMigration, fetched: Set<String>)
        case copySource(SourceDrivenCopy, dirty: Set<String>, removed: [String: Version], finalSent: Bool)
        case copyDestination(MigrationID)
    }

    enum Completion { case inProgress, done(CompletionRecord) }

    let id: ServerID
    unowned let cluster: Cluster
    let tableID: UInt64
    let bucketCount: UInt64
    var store: [String: StoredEntry] = [:]
    var hashes: [String: KeyHash] = [:]
    var safeVersion: Version
    var roles: [Tablet: Role] = [:]
    var completions: [UInt64: Completion] = [:]
    var inFlightWrites: [Tablet: Int] = [:]
    /// Migrations that ended here as destination, and their tablets.
    var endedHere: [MigrationID: Tablet] = [:]
    /// Priority fetches under way, by migration and key ("m key"): requests
    /// waiting for the same key share one fetch.
    var pendingFetches: [String: [() -> Void]] = [:]
    /// Migrations this server is done with (ended, cancelled, reversed): a
    /// start or a prepare that the network delayed or repeated must not
    /// freeze a tablet for a migration that is over.
    var retired: Set<MigrationID> = []
    lazy var resender = Resender(cluster: cluster, owner: id)
    var faults: ProtocolFaults { cluster.config.faults }
    var world: World { cluster.world }

    init(id: ServerID, cluster: Cluster, tableID: UInt64, bucketCount: UInt64, safeVersion: Version) {
        self.id = id
        self.cluster = cluster
        self.tableID = tableID
        self.bucketCount = bucketCount
        self.safeVersion = safeVersion
    }

    func hash(_ key: String) -> KeyHash {
        if let h = hashes[key] { return h }
        let h = simulatedKeyHash(tableID: tableID, key: key)
        hashes[key] = h
        return h
    }

    func tablet(for key: String) -> Tablet? {
        let h = hash(key)
        return roles.keys.first { $0.contains(tableID: tableID, keyHash: h) }
    }

    var layout: HashTableLayout { try! HashTableLayout(bucketCount: bucketCount, partitionCount: 1) }

    /// Stock RAMCloud write of a loaded object (the initial data set).
    func load(key: String, value: Int64) -> Version {
        let version = VersionRule.nextVersion(existing: store[key]?.entryVersion, safeVersion: safeVersion, floor: nil)
        if store[key] == nil { safeVersion = max(safeVersion, version + 1) }
        store[key] = StoredEntry(value: value, version: version)
        return version
    }

    // MARK: Receiving

    func receive(_ message: Message, from sender: ServerID) {
        switch message {
        case .read(let request, let key, let hint):
            handleRead(request, key: key, hint: hint, from: sender)
        case .mutate(let request, let rpcID, let key, let mutation, let hint):
            handleMutation(request, rpcID: rpcID, key: key, mutation, hint: hint, from: sender, fetched: false)
        case .startMigration(let m, let tablet, let source, let strategy, let reverse):
            startMigration(m, tablet: tablet, source: source, strategy: strategy, reverse: reverse, from: sender)
        case .prepare(let m, let tablet, let destination, let strategy, let partitions, let reverse):
            prepare(m, tablet: tablet, destination: destination, strategy: strategy, partitions: partitions,
                    reverse: reverse)
        case .prepared(let m, let result, let records):
            prepared(m, result: result, records: records)
        case .ownership(let m, let granted):
            ownership(m, granted: granted)
        case .pull(let m, let batch, let maxEntries):
            servePull(m, batch: batch, maxEntries: maxEntries, to: sender)
        case .pulled(let m, let batch, let entries, let resumeAt):
            pulled(m, batch: batch, entries: entries, resumeAt: resumeAt)
        case .priorityPull(let m, let key):
            servePriorityPull(m, key: key, to: sender)
        case .priorityPulled(let m, let key, let answer):
            priorityPulled(m, key: key, answer: answer)
        case .finished(let m, let granted):
            finished(m, granted: granted)
        case .drop(let m):
            drop(m, from: sender)
        case .release(let m):
            release(m, from: sender)
        case .abandon(let m):
            abandon(m, from: sender)
        case .acknowledged(let m, let what):
            acknowledged(m, what: what)
        case .push(let m, let batch, let entries, let records, let bound):
            receivePush(m, batch: batch, entries: entries, records: records, versionBound: bound, from: sender)
        case .pushed(let m, let batch):
            pushAcknowledged(m, batch: batch)
        default:
            break
        }
    }

    // MARK: Client requests

    private func answer(_ read: LookupAnswer, key: String) -> ReadStatus {
        switch read {
        case .object, .notYetMoved(stale: .object?): return .answer(read, value: store[key]?.value)
        default: return .answer(read, value: nil)
        }
    }

    private func endedTag(_ hint: MigrationHint?) -> MigrationTag? {
        guard let hint, endedHere[hint.migration] != nil else { return nil }
        return MigrationTag(migration: hint.migration, role: .ended)
    }

    func handleRead(_ request: UInt64, key: String, hint: MigrationHint?, from client: ServerID,
                    queued: Bool = false) {
        // A source busy serving pulls answers reads late; the tablet may be
        // gone by then.
        if !queued, let tablet = tablet(for: key), case .source? = roles[tablet] {
            let wait = world.random.between(0, cluster.config.sourceReadQueueing)
            world.after(wait) { [weak self] in self?.handleRead(request, key: key, hint: hint, from: client, queued: true) }
            return
        }
        let reply = { (status: ReadStatus, tag: MigrationTag?, fetched: Bool) in
            self.cluster.send(.readReply(request: request, status, tag: tag, priorityFetched: fetched),
                              from: self.id, to: client)
        }
        guard let tablet = tablet(for: key), let role = roles[tablet] else { return reply(.unknownTablet, nil, false) }
        let h = hash(key)
        let local = store[key]
        switch role {
        case .normal:
            let found: LookupAnswer = local?.value != nil ? .object(local!.version) : .absent
            reply(answer(found, key: key), endedTag(hint), false)
        case .source(let sm, let forwardFetched):
            let tag = sm.tag(for: hint)
            switch sm.admit(.read) {
            case .execute:
                let read = sm.answerRead(keyHash: h, local: local?.entryVersion, fetched: forwardFetched.contains(key))
                reply(answer(read, key: key), sm.tagsReads ? tag : nil, false)
            case .retryLater, .retryAfterPriorityFetch, .priorityFetchFirst: reply(.retry, tag, false)
            case .refuse: reply(.unknownTablet, tag, false)
            }
        case .destination(let dm, let fetched):
            let tag = dm.tag(for: hint)
            switch dm.admit(.read, keyHash: h, local: local?.entryVersion, fetched: fetched.contains(key)) {
            case .execute:
                let read = dm.answerRead(keyHash: h, local: local?.entryVersion, fetched: fetched.contains(key))
                reply(answer(read, key: key), tag, false)
            case .retryAfterPriorityFetch:
                priorityFetch(key, migration: dm.id) {}
                reply(.retry, tag, true)
            case .priorityFetchFirst:
                priorityFetch(key, migration: dm.id) { [weak self] in
                    self?.handleRead(request, key: key, hint: hint, from: client)
                }
            case .retryLater: reply(.retry, tag, false)
            case .refuse: reply(.unknownTablet, tag, false)
            }
        case .copySource(let copy, _, _, _):
            switch copy.admitAtSource(.read) {
            case .execute:
                let found: LookupAnswer = local?.value != nil ? .object(local!.version) : .absent
                reply(answer(found, key: key), nil, false)
            case .refuse: reply(.unknownTablet, nil, false)
            default: reply(.retry, nil, false)
            }
        case .copyDestination:
            reply(.unknownTablet, nil, false)
        }
    }

    func handleMutation(_ request: UInt64, rpcID: UInt64, key: String, _ mutation: Mutation,
                        hint: MigrationHint?, from client: ServerID, fetched priorityFetched: Bool) {
        let reply = { (status: MutationStatus, tag: MigrationTag?) in
            self.cluster.send(.mutateReply(request: request, status, tag: tag, priorityFetched: priorityFetched),
                              from: self.id, to: client)
        }
        guard let tablet = tablet(for: key), let role = roles[tablet] else { return reply(.unknownTablet, nil) }
        let h = hash(key)
        let kind = mutation.requestKind
        var tag: MigrationTag? = nil
        let admission: Admission
        switch role {
        case .normal:
            tag = endedTag(hint)
            admission = .execute
        case .source(let sm, _):
            tag = sm.tag(for: hint)
            admission = sm.admit(kind)
        case .destination(let dm, let fetched):
            tag = dm.tag(for: hint)
            admission = dm.admit(kind, keyHash: h, local: store[key]?.entryVersion, fetched: fetched.contains(key))
            if admission == .priorityFetchFirst {
                priorityFetch(key, migration: dm.id) { [weak self] in
                    self?.handleMutation(request, rpcID: rpcID, key: key, mutation, hint: hint, from: client,
                                         fetched: true)
                }
                return
            }
        case .copySource(let copy, _, _, _):
            admission = copy.admitAtSource(kind)
        case .copyDestination:
            admission = .refuse
        }
        switch admission {
        case .execute: break
        case .refuse: return reply(.unknownTablet, tag)
        case .retryLater, .retryAfterPriorityFetch, .priorityFetchFirst: return reply(.retry, tag)
        }
        // RIFL: a retried RPC gets its first execution's result.
        switch completions[rpcID] {
        case .done(let record)?:
            cluster.counters.duplicateRPCsAnswered += 1
            return reply(.done(record.outcome), tag)
        case .inProgress?:
            return reply(.retry, tag)
        case nil:
            break
        }
        completions[rpcID] = .inProgress
        inFlightWrites[tablet, default: 0] += 1
        // The write runs by the rules of the role that admitted it, even if
        // the role changes before it completes (a cancel's reverse run).
        var admittedAsTarget: DestinationMigration? = nil
        if case .destination(let dm, _) = role { admittedAsTarget = dm }
        // The write is in flight for a while: Prepare must wait for it.
        world.after(world.random.between(5_000, 150_000)) { [self] in
            let before = store[key]
            let outcome = apply(mutation, key: key, tablet: tablet, target: admittedAsTarget)
            cluster.trace(key, "\(id) applied \(mutation) rpc \(rpcID) on \(String(describing: before)) -> \(outcome) as \(String(describing: roles[tablet]))")
            completions[rpcID] = .done(CompletionRecord(rpcID: rpcID, tableID: tableID, keyHash: h, outcome: outcome))
            inFlightWrites[tablet, default: 1] -= 1
            reply(.done(outcome), currentTag(tablet: tablet, hint: hint) ?? tag)
            writeDrained(tablet)
        }
    }

    private func currentTag(tablet: Tablet, hint: MigrationHint?) -> MigrationTag? {
        switch roles[tablet] {
        case .destination(let dm, _)?: return dm.tag(for: hint)
        case .normal?: return endedTag(hint)
        default: return nil
        }
    }

    /// Applies a mutation with RAMCloud's semantics and the version rules of
    /// the key's tablet role.
    private func apply(_ mutation: Mutation, key: String, tablet: Tablet,
                       target destination: DestinationMigration?) -> MutationOutcome {
        let local = store[key]
        let live = local?.value != nil ? local : nil
        func nextVersion() -> Version {
            destination?.versionForWrite(existing: local?.entryVersion, safeVersion: safeVersion)
                ?? VersionRule.nextVersion(existing: local?.entryVersion, safeVersion: safeVersion, floor: nil)
        }
        func install(_ value: Int64) -> Version {
            let version = nextVersion()
            if local == nil { safeVersion = max(safeVersion, version + 1) }
            store[key] = StoredEntry(value: value, version: version)
            noteCopyWrite(key: key, tablet: tablet, removedVersion: nil)
            return version
        }
        switch mutation {
        case .write(let value, let rules):
            if let rejection = rules?.evaluate(currentVersion: live?.version) { return .rejected(rejection) }
            return .written(version: install(value))
        case .increment(let delta, let rules):
            if let rejection = rules?.evaluate(currentVersion: live?.version) { return .rejected(rejection) }
            let value = (live?.value ?? 0) &+ delta
            return .incremented(value: value, version: install(value))
        case .remove(let rules):
            if let rejection = rules?.evaluate(currentVersion: live?.version) { return .rejected(rejection) }
            if let dm = destination, let tombstone = dm.tombstoneForRemove(existing: local?.entryVersion,
                                                                           safeVersion: safeVersion) {
                store[key] = StoredEntry(value: nil, version: tombstone.version)
                safeVersion = max(safeVersion, tombstone.version + 1)
                // A destination that has not seen the key cannot say which version it removed.
                let knew = dm.knowsKey(keyHash: hash(key), local: local?.entryVersion, fetched: isFetched(key, tablet))
                return .removed(version: knew ? live?.version : nil)
            }
            guard let live else {
                if destination != nil { store[key] = nil }
                return .removed(version: nil)
            }
            store[key] = nil
            safeVersion = max(safeVersion, live.version + 1)
            noteCopyWrite(key: key, tablet: tablet, removedVersion: live.version)
            return .removed(version: live.version)
        }
    }

    private func isFetched(_ key: String, _ tablet: Tablet) -> Bool {
        if case .destination(_, let fetched)? = roles[tablet] { return fetched.contains(key) }
        return false
    }

    // MARK: Priority fetch (destination side)

    private func priorityFetch(_ key: String, migration m: MigrationID, then continuation: @escaping () -> Void) {
        let fetch = "\(m) \(key)"
        if pendingFetches[fetch] != nil {
            pendingFetches[fetch]!.append(continuation)
            return
        }
        pendingFetches[fetch] = [continuation]
        guard let tablet = tablet(for: key), case .destination(let dm, _)? = roles[tablet] else { return }
        cluster.counters.priorityFetches += 1
        resender.send("fetch \(m) \(key)", .priorityPull(m, key: key), to: dm.source, attempts: 100)
    }

    private func priorityPulled(_ m: MigrationID, key: String, answer: PriorityAnswer) {
        resender.done("fetch \(m) \(key)")
        guard let continuations = pendingFetches.removeValue(forKey: "\(m) \(key)") else { return }
        if let tablet = tablet(for: key), case .destination(let dm, var fetched)? = roles[tablet], dm.id == m {
            if case .entry(let entry) = answer, dm.replayInstalls(entry.entryVersion, over: store[key]?.entryVersion) {
                store[key] = entry
            }
            fetched.insert(key)
            roles[tablet] = .destination(dm, fetched: fetched)
            cluster.trace(key, "\(id) priority-fetched \(answer) now \(String(describing: store[key]))")
        }
        continuations.forEach { $0() }
    }

    private func servePriorityPull(_ m: MigrationID, key: String, to destination: ServerID) {
        guard let tablet = tablet(for: key), case .source(let sm, let forwardFetched)? = roles[tablet],
              sm.id == m, sm.servesPulls else { return }
        let answer: PriorityAnswer
        if let entry = store[key] {
            answer = .entry(entry)
        } else {
            switch sm.answerRead(keyHash: hash(key), local: nil, fetched: forwardFetched.contains(key)) {
            case .notYetMoved: answer = .noInformation
            default: answer = .absent
            }
        }
        cluster.send(.priorityPulled(m, key: key, answer), from: id, to: destination)
    }

    // MARK: Migration, destination side

    private func startMigration(_ m: MigrationID, tablet: Tablet, source: ServerID, strategy: Strategy,
                                reverse: ReverseRun?, from coordinator: ServerID) {
        // Acknowledged only once taken on: a tablet still being dropped here
        // from an earlier migration makes the coordinator ask again.
        let acknowledge = { self.cluster.send(.acknowledged(m, what: "start"), from: self.id, to: coordinator) }
        if retired.contains(m) { return acknowledge() }
        if strategy == .source {
            if case .copyDestination(let cm)? = roles[tablet], cm == m { return acknowledge() }
            guard roles[tablet] == nil else { return }
            acknowledge()
            roles[tablet] = .copyDestination(m)
            resender.send("prepare \(m)", .prepare(m, tablet, destination: id, strategy, partitions: 1, reverse: nil),
                          to: source)
            return
        }
        switch roles[tablet] {
        case .destination(let dm, _)? where dm.id == m:
            return acknowledge()
        case nil where reverse == nil:
            break
        case .source(let sm, _)? where reverse != nil && sm.id == reverse!.forward:
            break
        default:
            return
        }
        guard let dm = try? DestinationMigration(id: m, tablet: tablet, source: source, destination: id,
                                                 strategy: strategy, reverse: reverse,
                                                 tuning: cluster.config.tuning, faults: faults) else { return }
        acknowledge()
        if let reverse { retired.insert(reverse.forward) }
        roles[tablet] = .destination(dm, fetched: [])
        resender.send("prepare \(m)", .prepare(m, tablet, destination: id, strategy,
                                               partitions: cluster.config.tuning.partitions, reverse: reverse),
                      to: source)
    }

    private func prepared(_ m: MigrationID, result: PrepareResult, records: [CompletionRecord]) {
        resender.done("prepare \(m)")
        for tablet in roles.keys {
            switch roles[tablet]! {
            case .destination(var dm, let fetched) where dm.id == m && !dm.isPrepared:
                for record in records where completions[record.rpcID] == nil {
                    completions[record.rpcID] = .done(record)
                }
                cluster.counters.completionRecordsHandedOver += records.count
                // Keys created here after the migration must not reuse a
                // version the source assigned either (removed keys included).
                safeVersion = max(safeVersion, result.versionBound)
                dm.prepared(result)
                roles[tablet] = .destination(dm, fetched: fetched)
                resender.send("own \(m)", .takeOwnership(m, versionBound: result.versionBound),
                              to: cluster.coordinatorID)
            case .copySource(let copy, _, _, _) where copy.id == m:
                break
            default:
                continue
            }
        }
    }

    private func ownership(_ m: MigrationID, granted: Bool) {
        guard resender.isPending("own \(m)") else { return }
        resender.done("own \(m)")
        for tablet in roles.keys {
            switch roles[tablet]! {
            case .destination(var dm, let fetched) where dm.id == m:
                if granted {
                    dm.tookOwnership()
                    roles[tablet] = .destination(dm, fetched: fetched)
                    pumpPulls(tablet)
                } else {
                    retired.insert(m)
                    roles[tablet] = nil
                }
            case .copySource(let copy, _, _, _) where copy.id == m:
                if granted { sendFinalPush(tablet) }
            default:
                continue
            }
        }
    }

    private func pumpPulls(_ tablet: Tablet) {
        guard case .destination(var dm, let fetched)? = roles[tablet] else { return }
        let batches = dm.nextPulls()
        roles[tablet] = .destination(dm, fetched: fetched)
        for batch in batches {
            cluster.send(.pull(dm.id, batch, maxEntries: cluster.config.pullEntries), from: id, to: dm.source)
            let m = dm.id
            world.after(cluster.config.pullTimeout) { [weak self] in
                guard let self, case .destination(var dm, let fetched)? = self.roles[tablet], dm.id == m,
                      dm.schedule?.state(of: batch) == .inFlight else { return }
                dm.pullFailed(batch)
                self.roles[tablet] = .destination(dm, fetched: fetched)
                self.pumpPulls(tablet)
            }
        }
        maybeFinish(tablet)
    }

    private func pulled(_ m: MigrationID, batch: PullBatch, entries: [String: StoredEntry], resumeAt: UInt64?) {
        guard let tablet = roles.keys.first(where: {
            if case .destination(let dm, _)? = roles[$0], dm.id == m { return true }
            return false
        }), case .destination(var dm, let fetched)? = roles[tablet] else { return }
        guard dm.pullArrived(batch, resumeAt: resumeAt) else { return }
        roles[tablet] = .destination(dm, fetched: fetched)
        let replayed = PullBatch(partition: batch.partition,
                                 buckets: batch.buckets.lowerBound..<(resumeAt ?? batch.buckets.upperBound))
        // Replay takes a while; the watermark moves only after it.
        world.after(world.random.between(10_000, 400_000)) { [weak self] in
            guard let self, case .destination(var dm, let fetched)? = self.roles[tablet], dm.id == m,
                  dm.phase == .moving else { return }
            for key in entries.keys.sorted() {
                let entry = entries[key]!
                if dm.replayInstalls(entry.entryVersion, over: self.store[key]?.entryVersion) {
                    self.cluster.trace(key, "\(self.id) replayed \(entry) over \(String(describing: self.store[key]))")
                    self.store[key] = entry
                }
            }
            self.cluster.counters.entriesMoved += entries.count
            dm.batchReplayed(replayed)
            self.roles[tablet] = .destination(dm, fetched: fetched)
            self.pumpPulls(tablet)
        }
        pumpPulls(tablet)
    }

    private func maybeFinish(_ tablet: Tablet) {
        guard case .destination(let dm, _)? = roles[tablet], dm.phase == .moving, dm.everythingReplayed,
              !resender.isPending("finish \(dm.id)") else { return }
        resender.send("finish \(dm.id)", .finish(dm.id), to: cluster.coordinatorID)
    }

    private func finished(_ m: MigrationID, granted: Bool) {
        guard resender.isPending("finish \(m)") else { return }
        resender.done("finish \(m)")
        for tablet in roles.keys {
            switch roles[tablet]! {
            case .destination(var dm, _) where dm.id == m && granted:
                _ = dm.finish()
                retired.insert(m)
                roles[tablet] = .normal
                endedHere[m] = tablet
                resender.send("drop \(m)", .drop(m), to: dm.source)
                if cluster.timeline.endedAt == nil { cluster.timeline.endedAt = world.now }
            case .copySource(var copy, _, _, _) where copy.id == m && granted:
                copy.transferred()
                dropTablet(tablet)
                resender.send("drop \(m)", .drop(m), to: copy.destination)
                if cluster.timeline.endedAt == nil { cluster.timeline.endedAt = world.now }
            default:
                continue
            }
        }
    }

    private func acknowledged(_ m: MigrationID, what: String) {
        guard resender.isPending("\(what) \(m)") else { return }
        resender.done("\(what) \(m)")
        if what == "drop", let tablet = endedHere[m], roles[tablet]?.isNormal == true {
            // The source dropped the tablet: the tombstones kept here can go.
            for (key, entry) in store where entry.value == nil && tablet.contains(tableID: tableID, keyHash: hash(key)) {
                store[key] = nil
            }
        }
    }

    // MARK: Migration, source side

    private func highestVersion(in tablet: Tablet) -> Version {
        var highest: Version = 0
        for (key, entry) in store where tablet.contains(tableID: tableID, keyHash: hash(key)) {
            highest = max(highest, entry.version)
        }
        return highest
    }

    private func prepare(_ m: MigrationID, tablet: Tablet, destination: ServerID, strategy: Strategy,
                         partitions: Int, reverse: ReverseRun?) {
        if retired.contains(m) { return }
        if strategy == .source {
            switch roles[tablet] {
            case .normal?:
                guard let copy = try? SourceDrivenCopy(id: m, tablet: tablet, source: id, destination: destination,
                                                       layout: layout,
                                                       bucketsPerBatch: cluster.config.tuning.bucketsPerBatch,
                                                       pipelineDepth: cluster.config.tuning.pipelineDepth)
                else { return }
                roles[tablet] = .copySource(copy, dirty: [], removed: [:], finalSent: false)
                pumpPushes(tablet)
            default:
                break
            }
            return
        }
        switch roles[tablet] {
        case .source(let sm, _)? where sm.id == m:
            completePrepare(tablet)
            return
        case .normal? where reverse == nil:
            let layout = try! HashTableLayout(bucketCount: bucketCount,
                                              partitionCount: min(partitions, Int(bucketCount)))
            guard let sm = try? SourceMigration(id: m, tablet: tablet, source: id, destination: destination,
                                                strategy: strategy, layout: layout, faults: faults) else { return }
            // A forward source holds no tombstones: drop any still kept from
            // an earlier migration into this server.
            for (key, entry) in store where entry.value == nil && tablet.contains(tableID: tableID, keyHash: hash(key)) {
                store[key] = nil
            }
            roles[tablet] = .source(sm, forwardFetched: [])
        case .destination(let forward, let fetched)? where reverse != nil && forward.id == reverse!.forward:
            // The reverse run of a cancelled migration: this server was its
            // destination and now gives the tablet back.
            let layout = try! HashTableLayout(bucketCount: bucketCount,
                                              partitionCount: min(partitions, Int(bucketCount)))
            let run = ReverseRun(forward: forward.id, forwardBound: forward.versionFloor ?? reverse!.forwardBound,
                                 forwardWatermarks: forward.watermarks)
            guard let sm = try? SourceMigration(id: m, tablet: tablet, source: id, destination: destination,
                                                strategy: strategy, layout: layout, reverse: run, faults: faults)
            else { return }
            retired.insert(forward.id)
            roles[tablet] = .source(sm, forwardFetched: fetched)
        default:
            return
        }
        completePrepare(tablet)
    }

    private func writeDrained(_ tablet: Tablet) {
        switch roles[tablet] {
        case .source?: completePrepare(tablet)
        case .copySource?: sendFinalPushIfLocked(tablet)
        default: break
        }
    }

    private func completePrepare(_ tablet: Tablet) {
        guard case .source(var sm, let forwardFetched)? = roles[tablet] else { return }
        guard let result = sm.completePrepare(inFlightWrites: inFlightWrites[tablet, default: 0],
                                              preparedTransactions: 0, safeVersion: safeVersion,
                                              highestVersionInTablet: highestVersion(in: tablet)) else { return }
        roles[tablet] = .source(sm, forwardFetched: forwardFetched)
        var records: [CompletionRecord] = []
        for case .done(let record) in completions.values
        where sm.handsOver(completionRecordFor: record.tableID, keyHash: record.keyHash) {
            records.append(record)
        }
        records.sort { $0.rpcID < $1.rpcID }
        cluster.send(.prepared(sm.id, result, records), from: id, to: sm.destination)
    }

    private func servePull(_ m: MigrationID, batch: PullBatch, maxEntries: Int, to destination: ServerID) {
        // A busy source takes a while per pull.
        world.after(world.random.between(cluster.config.pullService.lowerBound,
                                         cluster.config.pullService.upperBound)) { [weak self] in
            guard let self else { return }
            guard let tablet = self.roles.keys.first(where: {
                if case .source(let sm, _)? = self.roles[$0], sm.id == m { return true }
                return false
            }), case .source(let sm, _)? = self.roles[tablet], sm.servesPulls else { return }
            let (entries, resumeAt) = self.collect(tablet: tablet, layout: sm.layout, buckets: batch.buckets,
                                                   maxEntries: maxEntries) { sm.pullIncludes($0.entryVersion) }
            self.cluster.counters.pullsServed += 1
            self.cluster.send(.pulled(m, batch, entries, resumeAt: resumeAt), from: self.id, to: destination)
        }
    }

    /// The tablet's entries in a bucket range, cut at a bucket boundary
    /// once `maxEntries` is reached.
    private func collect(tablet: Tablet, layout: HashTableLayout, buckets: Range<UInt64>, maxEntries: Int,
                         including: (StoredEntry) -> Bool) -> ([String: StoredEntry], UInt64?) {
        var byBucket: [UInt64: [(String, StoredEntry)]] = [:]
        for (key, entry) in store {
            let h = hash(key)
            guard tablet.contains(tableID: tableID, keyHash: h), including(entry) else { continue }
            let b = layout.bucket(of: h)
            if buckets.contains(b) { byBucket[b, default: []].append((key, entry)) }
        }
        var out: [String: StoredEntry] = [:]
        for b in byBucket.keys.sorted() {
            if out.count >= maxEntries { return (out, b) }
            for (key, entry) in byBucket[b]! { out[key] = entry }
        }
        return (out, nil)
    }

    private func drop(_ m: MigrationID, from destination: ServerID) {
        world.after(world.random.between(cluster.config.dropDelay.lowerBound, cluster.config.dropDelay.upperBound)) { [weak self] in
            guard let self else { return }
            for tablet in self.roles.keys {
                switch self.roles[tablet]! {
                case .source(let sm, _) where sm.id == m:
                    self.retired.insert(m)
                    self.dropTablet(tablet)
                case .copyDestination(let cm) where cm == m:
                    self.roles[tablet] = .normal
                default:
                    continue
                }
            }
            self.cluster.send(.acknowledged(m, what: "drop"), from: self.id, to: destination)
        }
    }

    private func dropTablet(_ tablet: Tablet) {
        roles[tablet] = nil
        for key in store.keys where tablet.contains(tableID: tableID, keyHash: hash(key)) { store[key] = nil }
    }

    private func release(_ m: MigrationID, from coordinator: ServerID) {
        retired.insert(m)
        for tablet in roles.keys {
            switch roles[tablet]! {
            case .source(var sm, _) where sm.id == m:
                sm.release()
                roles[tablet] = .normal
            case .copySource(var copy, _, _, _) where copy.id == m:
                copy.abort()
                roles[tablet] = .normal
            default:
                continue
            }
        }
        cluster.send(.acknowledged(m, what: "release"), from: id, to: coordinator)
    }

    private func abandon(_ m: MigrationID, from coordinator: ServerID) {
        retired.insert(m)
        for tablet in roles.keys {
            switch roles[tablet]! {
            case .destination(let dm, _) where dm.id == m:
                resender.done("prepare \(m)")
                resender.done("own \(m)")
                dropTablet(tablet)
            case .copyDestination(let cm) where cm == m:
                resender.done("prepare \(m)")
                dropTablet(tablet)
            default:
                continue
            }
        }
        cluster.send(.acknowledged(m, what: "abandon"), from: id, to: coordinator)
    }

    // MARK: Source-driven copy

    private func noteCopyWrite(key: String, tablet: Tablet, removedVersion: Version?) {
        guard case .copySource(let copy, var dirty, var removed, let finalSent)? = roles[tablet] else { return }
        guard copy.writeNeedsResend(keyHash: hash(key)) || copy.phase == .locked else { return }
        dirty.insert(key)
        if let removedVersion { removed[key] = removedVersion }
        roles[tablet] = .copySource(copy, dirty: dirty, removed: removed, finalSent: finalSent)
    }

    private func pumpPushes(_ tablet: Tablet) {
        guard case .copySource(var copy, let dirty, let removed, let finalSent)? = roles[tablet] else { return }
        let batches = copy.nextPushes()
        let locked = copy.lockIfCopied()
        roles[tablet] = .copySource(copy, dirty: dirty, removed: removed, finalSent: finalSent)
        for batch in batches {
            world.after(world.random.between(cluster.config.pullService.lowerBound,
                                             cluster.config.pullService.upperBound)) { [weak self] in
                guard let self, case .copySource(let copy, _, _, _)? = self.roles[tablet],
                      copy.phase == .copying else { return }
                let (entries, _) = self.collect(tablet: tablet, layout: copy.schedule.layout, buckets: batch.buckets,
                                                maxEntries: .max) { $0.value != nil }
                self.resender.send("push \(copy.id) \(batch)", .push(copy.id, batch, entries, [], versionBound: 0),
                                   to: copy.destination)
            }
        }
        if locked {
            resender.send("own \(copy.id)", .takeOwnership(copy.id, versionBound: 0), to: cluster.coordinatorID)
        }
    }

    private func sendFinalPush(_ tablet: Tablet) {
        guard case .copySource(let copy, let dirty, let removed, _)? = roles[tablet] else { return }
        roles[tablet] = .copySource(copy, dirty: dirty, removed: removed, finalSent: true)
        sendFinalPushIfLocked(tablet)
    }

    /// The final push goes once the copy is locked, ownership is granted and
    /// no write admitted before the lock is still running.
    private func sendFinalPushIfLocked(_ tablet: Tablet) {
        guard case .copySource(let copy, let dirty, let removed, let finalSent)? = roles[tablet],
              copy.phase == .locked, finalSent, inFlightWrites[tablet, default: 0] == 0,
              !resender.isPending("final \(copy.id)") else { return }
        var entries: [String: StoredEntry] = [:]
        for key in dirty {
            entries[key] = store[key] ?? StoredEntry(value: nil, version: removed[key] ?? 0)
        }
        // The tablet's completion records go too (they are log entries,
        // copied like objects), so a retried RPC is not executed twice.
        var records: [CompletionRecord] = []
        for case .done(let record) in completions.values
        where tablet.contains(tableID: record.tableID, keyHash: record.keyHash) {
            records.append(record)
        }
        records.sort { $0.rpcID < $1.rpcID }
        let bound = VersionRule.versionBound(safeVersion: safeVersion, highestVersionInTablet: highestVersion(in: tablet))
        resender.send("final \(copy.id)", .push(copy.id, nil, entries, records, versionBound: bound),
                      to: copy.destination)
    }

    private func receivePush(_ m: MigrationID, batch: PullBatch?, entries: [String: StoredEntry],
                             records: [CompletionRecord], versionBound: Version, from source: ServerID) {
        guard let tablet = roles.keys.first(where: {
            if case .copyDestination(let cm)? = roles[$0], cm == m { return true }
            return false
        }) else { return }
        resender.done("prepare \(m)")
        _ = tablet
        for record in records where completions[record.rpcID] == nil { completions[record.rpcID] = .done(record) }
        // As RAMCloud's replay does: no later write here may reuse a version
        // the source assigned (removed keys included).
        safeVersion = max(safeVersion, versionBound)
        for key in entries.keys.sorted() {
            let entry = entries[key]!
            if ReplayRule.replaces(entry.entryVersion, over: store[key]?.entryVersion) { store[key] = entry }
        }
        cluster.counters.entriesMoved += entries.count
        cluster.send(.pushed(m, batch), from: id, to: source)
    }

    private func pushAcknowledged(_ m: MigrationID, batch: PullBatch?) {
        guard let tablet = roles.keys.first(where: {
            if case .copySource(let copy, _, _, _)? = roles[$0], copy.id == m { return true }
            return false
        }), case .copySource(var copy, let dirty, let removed, let finalSent)? = roles[tablet] else { return }
        guard let batch else {
            guard resender.isPending("final \(m)") else { return }
            resender.done("final \(m)")
            resender.send("finish \(m)", .finish(m), to: cluster.coordinatorID)
            return
        }
        guard resender.isPending("push \(m) \(batch)") else { return }
        resender.done("push \(m) \(batch)")
        copy.pushAcknowledged(batch)
        roles[tablet] = .copySource(copy, dirty: dirty, removed: removed, finalSent: finalSent)
        pumpPushes(tablet)
    }
}

extension SimServer.Role {
    var isNormal: Bool {
        if case .normal = self { return true }
        return false
    }
}
