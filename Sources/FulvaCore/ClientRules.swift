/// What a client knows about one migration, learned from reply tags.
public struct ClientMigrationView<Key: Hashable & Sendable>: Hashable, Sendable {
    public var id: MigrationID
    public var source: ServerID?
    public var destination: ServerID?
    public var strategy: Strategy?
    public var tablet: Tablet?
    public var watermarks: Watermarks?
    /// The destination's progress epoch the client has caught up to.
    public var epoch: UInt32 = 0
    /// Keys the destination answered with an object or a tombstone: their
    /// latest state is there for good.
    public var keysAtDestination: Set<Key> = []

    public var hint: MigrationHint { MigrationHint(migration: id, epoch: watermarks == nil ? 0 : epoch) }

    public func covers(tableID: UInt64, keyHash: KeyHash) -> Bool {
        tablet?.contains(tableID: tableID, keyHash: keyHash) ?? false
    }

    /// Whether a read of the key needs only the destination.
    public func readGoesToDestinationOnly(key: Key, keyHash: KeyHash) -> Bool {
        if strategy == .rocksteady { return true }
        if keysAtDestination.contains(key) { return true }
        return watermarks?.isCovered(keyHash) ?? false
    }
}

/// The client's table of migrations it knows to be running, keyed by
/// migration id. The host keeps its own tablet map (RAMCloud's ObjectFinder)
/// and flushes the entries this table names.
public struct ClientMigrationTable<Key: Hashable & Sendable>: Sendable {
    public private(set) var migrations: [MigrationID: ClientMigrationView<Key>] = [:]
    /// Migrations the client saw end; their tags are not learned again.
    public private(set) var ended: Set<MigrationID> = []
    /// Tablets whose map entry the host must flush (drained with `takeFlushes`).
    var flushes: [Tablet] = []
    public let faults: ProtocolFaults

    public init(faults: ProtocolFaults = .none) { self.faults = faults }

    /// The running migration that covers the key, the newest if several do.
    public func migration(tableID: UInt64, keyHash: KeyHash) -> ClientMigrationView<Key>? {
        migrations.values.filter { $0.covers(tableID: tableID, keyHash: keyHash) }.max { $0.id < $1.id }
    }

    public mutating func takeFlushes() -> [Tablet] {
        defer { flushes.removeAll() }
        return flushes
    }

    /// Absorbs a reply's tag. Returns false for a tag of a migration this
    /// client saw end (the reply is about the past and must not be used).
    @discardableResult
    public mutating func learn(_ tag: MigrationTag) -> Bool {
        if ended.contains(tag.migration) { return false }
        if tag.role == .ended {
            end(tag.migration)
            return true
        }
        var view = migrations[tag.migration] ?? ClientMigrationView<Key>(id: tag.migration)
        if let identity = tag.identity {
            view.source = identity.source
            view.destination = identity.destination
            view.strategy = identity.strategy
            view.tablet = identity.tablet
            if view.watermarks?.layout != identity.layout {
                view.watermarks = Watermarks(layout: identity.layout)
            }
        }
        if tag.role == .destination, view.watermarks != nil {
            for update in tag.watermarks {
                view.watermarks!.raise(partition: Int(update.partition), to: UInt64(update.bucket))
            }
            view.epoch = max(view.epoch, tag.epoch)
        }
        // A newer migration over the same tablet supersedes older ones.
        if let tablet = view.tablet {
            for (id, other) in migrations where id < tag.migration && other.tablet.map(tablet.overlaps) == true {
                migrations[id] = nil
                ended.insert(id)
            }
        }
        migrations[tag.migration] = view
        return true
    }

    /// The migration is over (or gone): forget it and flush the tablet map.
    public mutating func end(_ id: MigrationID) {
        if faults.contains(.tabletMapNotFlushedAtEnd) {
            // The bug: the view stays and the old owner stays in the map.
            ended.insert(id)
            return
        }
        if let tablet = migrations[id]?.tablet { flushes.append(tablet) }
        migrations[id] = nil
        ended.insert(id)
    }

    public mutating func noteKeyAtDestination(_ key: Key, migration: MigrationID) {
        migrations[migration]?.keysAtDestination.insert(key)
    }
}

/// A client's decision after a reply.
public enum ClientStep: Hashable, Sendable {
    /// Send the request to these servers (a dual read sends to both at once).
    case send([ServerID])
    /// Another reply of the same round is still due.
    case wait
    /// Complete the operation with the reply from this server.
    case complete(from: ServerID)
    /// Complete a read as "absent" (a tombstone or an authoritative miss won).
    case completeAbsent
    /// Flush the tablet map entry, look the owner up again and start over.
    case refreshMap
    /// Back off briefly, then start over.
    case retryLater
}

/// The life of one read on one key, by the client rules of DESIGN.md §3.
public struct ClientRead<Key: Hashable & Sendable>: Sendable {
    public let tableID: UInt64
    public let key: Key
    public let keyHash: KeyHash
    public private(set) var migration: MigrationID?
    public private(set) var source: ServerID?
    public private(set) var destination: ServerID?
    var sourceAnswer: LookupAnswer?
    var sourceGone = false
    var destinationAnswer: LookupAnswer?
    var waitingFor: Set<ServerID> = []
    public private(set) var dualRead = false
    public private(set) var rounds = 0

    public init(tableID: UInt64, key: Key, keyHash: KeyHash) {
        self.tableID = tableID
        self.key = key
        self.keyHash = keyHash
    }

    /// The hint to put in requests of this round.
    public var hint: MigrationHint? = nil

    /// Starts (or restarts) the read. `owner` is the tablet map's owner.
    public mutating func start(table: ClientMigrationTable<Key>, owner: ServerID?) -> ClientStep {
        sourceAnswer = nil
        destinationAnswer = nil
        sourceGone = false
        rounds += 1
        if let view = table.migration(tableID: tableID, keyHash: keyHash),
           let s = view.source, let d = view.destination {
            migration = view.id
            source = s
            destination = d
            hint = view.hint
            if view.readGoesToDestinationOnly(key: key, keyHash: keyHash) {
                waitingFor = [d]
            } else {
                waitingFor = [s, d]
                dualRead = true
            }
            return .send(Array(waitingFor).sorted())
        }
        migration = nil
        source = nil
        destination = nil
        hint = nil
        guard let owner else { return .refreshMap }
        waitingFor = [owner]
        return .send([owner])
    }

    /// A server answered the read.
    public mutating func received(_ answer: LookupAnswer, tag: MigrationTag?, from server: ServerID,
                                  table: inout ClientMigrationTable<Key>) -> ClientStep {
        guard waitingFor.contains(server) else { return .wait }  // late reply of an older round
        waitingFor.remove(server)
        if let tag {
            guard table.learn(tag) else {
                // A tag of a migration this client saw end: the reply is from
                // a frozen copy that no longer counts.
                if table.faults.contains(.tabletMapNotFlushedAtEnd) { return .complete(from: server) }
                return .refreshMap
            }
            if tag.role == .ended { return finish(answer, from: server) }
            if let migration, tag.migration != migration { return .retryLater }
            if migration == nil {
                // First news of the migration: a source's frozen copy is never
                // returned on its own; a destination's miss needs the source.
                guard let view = table.migrations[tag.migration], let s = view.source, let d = view.destination
                else { return .retryLater }
                migration = tag.migration
                source = s
                destination = d
                hint = view.hint
                if tag.role == .source {
                    if table.faults.contains(.sourceReplyReturnedAlone) { return .complete(from: server) }
                    sourceAnswer = answer
                    dualRead = true
                    waitingFor = [d]
                    return .send([d])
                }
                destinationAnswer = answer
                noteDestinationKey(answer, table: &table)
                if answer.isAuthoritative { return finish(answer, from: server) }
                dualRead = true
                waitingFor = [s]
                return .send([s])
            }
        } else if migration != nil {
            // An untagged answer inside a migration round: the tablet is not
            // migrating at that server any more; look again.
            return .refreshMap
        } else {
            return finish(answer, from: server)
        }
        if server == destination {
            destinationAnswer = answer
            noteDestinationKey(answer, table: &table)
        } else {
            sourceAnswer = answer
        }
        return decide(table: table)
    }

    /// The server answered STATUS_UNKNOWN_TABLET (with a tag when it has one).
    public mutating func unknownTablet(tag: MigrationTag?, from server: ServerID,
                                       table: inout ClientMigrationTable<Key>) -> ClientStep {
        guard waitingFor.contains(server) else { return .wait }
        waitingFor.remove(server)
        if let tag, table.learn(tag), tag.role != .ended {
            // A locked source (rocksteady) or a source that already gave the
            // tablet away: the table now knows where to go.
            waitingFor.removeAll()
            return .retryLater
        }
        if let migration, server == source {
            // The source dropped the tablet: the migration is over. The
            // destination is now authoritative; a miss there that was not
            // yet authoritative must be asked again, never turned into "absent".
            sourceGone = true
            table.end(migration)
            if let d = destinationAnswer {
                if d.isAuthoritative { return finish(d, from: destination!) }
                if table.faults.contains(.notYetMovedTakenAsAbsent) { return .completeAbsent }
                destinationAnswer = nil
                waitingFor = [destination!]
                hint = nil
                return .send([destination!])
            }
            return waitingFor.isEmpty ? .retryLater : .wait
        }
        if let migration, server == destination { table.end(migration) }
        waitingFor.removeAll()
        return .refreshMap
    }

    /// STATUS_RETRY from a server (rocksteady's miss, or a tablet changing hands).
    public mutating func retry(from server: ServerID) -> ClientStep {
        waitingFor.removeAll()
        return .retryLater
    }

    private func noteDestinationKey(_ answer: LookupAnswer, table: inout ClientMigrationTable<Key>) {
        guard let migration else { return }
        switch answer {
        case .object, .tombstone: table.noteKeyAtDestination(key, migration: migration)
        case .absent, .notYetMoved: break
        }
    }

    private mutating func decide(table: ClientMigrationTable<Key>) -> ClientStep {
        if let d = destinationAnswer, d.isAuthoritative, sourceAnswer == nil || sourceGone {
            return finish(d, from: destination!)
        }
        if waitingFor.isEmpty, sourceAnswer == nil, !sourceGone, let s = source,
           let d = destinationAnswer, !d.isAuthoritative {
            // The destination cannot tell after all: ask the source too.
            dualRead = true
            waitingFor = [s]
            return .send([s])
        }
        if sourceGone, let d = destinationAnswer, !d.isAuthoritative {
            // The source dropped the tablet after the destination answered:
            // ask the destination again, now that it knows.
            if table.faults.contains(.notYetMovedTakenAsAbsent) { return .completeAbsent }
            destinationAnswer = nil
            waitingFor = [destination!]
            hint = nil
            return .send([destination!])
        }
        guard waitingFor.isEmpty, let s = sourceAnswer, let d = destinationAnswer else {
            if sourceGone, destinationAnswer == nil { return .wait }
            return waitingFor.isEmpty ? .retryLater : .wait
        }
        switch ReadMerge.merge(source: s, destination: d) {
        case .source: return finish(s, from: source!)
        case .destination: return finish(d, from: destination!)
        case .absent: return .completeAbsent
        case .undecided: return .retryLater
        }
    }

    private func finish(_ answer: LookupAnswer, from server: ServerID) -> ClientStep {
        switch answer {
        case .object: return .complete(from: server)
        case .tombstone, .absent: return .completeAbsent
        case .notYetMoved(let stale):
            switch stale {
            case .object?: return .complete(from: server)
            case .absent?: return .completeAbsent
            case nil: return .retryLater
            }
        }
    }
}

/// Merging the two answers of a dual read.
public enum ReadMerge {
    public enum Winner: Hashable, Sendable { case source, destination, absent, undecided }

    /// The higher version wins, the destination on ties; a tombstone beats
    /// every object of a version not above it; an authoritative miss at the
    /// destination is final; a destination that cannot tell defers to the
    /// source (and a source that cannot tell, in a reverse run, to the
    /// destination's old copy).
    public static func merge(source: LookupAnswer, destination: LookupAnswer) -> Winner {
        switch destination {
        case .absent: return .absent
        case .object(let vd):
            if case .object(let vs) = source, vs > vd { return .source }
            if case .tombstone(let vs) = source, vs >= vd { return .absent }
            return .destination
        case .tombstone(let vd):
            if case .object(let vs) = source, vs > vd { return .source }
            return .absent
        case .notYetMoved(let stale):
            switch source {
            case .object(let vs):
                if case .object(let vo)? = stale, vo > vs { return .destination }
                return .source
            case .tombstone(let vs):
                if case .object(let vo)? = stale, vo > vs { return .destination }
                return .absent
            case .absent:
                return .absent
            case .notYetMoved:
                switch stale {
                case .object?: return .destination
                case .absent?: return .absent
                case nil: return .undecided
                }
            }
        }
    }
}

/// The life of one write (blind or not) on one key.
public struct ClientWrite<Key: Hashable & Sendable>: Sendable {
    public let tableID: UInt64
    public let keyHash: KeyHash
    public private(set) var target: ServerID?
    public private(set) var hint: MigrationHint?
    public private(set) var rounds = 0

    public init(tableID: UInt64, keyHash: KeyHash) {
        self.tableID = tableID
        self.keyHash = keyHash
    }

    /// Writes of a migrating tablet go to the destination at once.
    public mutating func start(table: ClientMigrationTable<Key>, owner: ServerID?) -> ClientStep {
        rounds += 1
        if let view = table.migration(tableID: tableID, keyHash: keyHash), let d = view.destination,
           view.strategy != .source {
            target = d
            hint = view.hint
            return .send([d])
        }
        hint = nil
        target = owner
        guard let owner else { return .refreshMap }
        return .send([owner])
    }

    /// The server executed the write (whatever its outcome).
    public mutating func executed(tag: MigrationTag?, from server: ServerID,
                                  table: inout ClientMigrationTable<Key>) -> ClientStep {
        if let tag { table.learn(tag) }
        return .complete(from: server)
    }

    public mutating func unknownTablet(tag: MigrationTag?, from server: ServerID,
                                       table: inout ClientMigrationTable<Key>) -> ClientStep {
        if let tag, table.learn(tag), tag.role != .ended { return .send(restartTargets(table)) }
        if let hint, let view = table.migrations[hint.migration], view.destination == server {
            // The destination does not have the tablet: cancelled or moved on.
            table.end(hint.migration)
        }
        return .refreshMap
    }

    private mutating func restartTargets(_ table: ClientMigrationTable<Key>) -> [ServerID] {
        if case .send(let targets) = start(table: table, owner: target) { return targets }
        return []
    }
}
