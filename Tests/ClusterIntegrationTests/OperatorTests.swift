import Atomics
import Foundation
import FulvaCheck
import FulvaCluster
import FulvaCore
import FulvaRAMCloud
import FulvaZooKeeper
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FulvaMigrationTests {
    /// The operator's commands around a migration: `plan` counts what would
    /// move and changes nothing; `start --throttle` holds the rate; the
    /// migration finishes after rc-migrate is killed with SIGKILL, and a
    /// new `status --watch` follows it from ZooKeeper; while it runs, a
    /// second migration over the tablet and one over --max-active are
    /// refused with nothing changed; `throttle` lifts the limit; a
    /// coordinator that does not answer is an error within
    /// --cluster-timeout.
    @Test func rcMigratePlansThrottlesAndSurvivesItsOwnDeath() throws {
        let (cluster, client, table) = try Self.filledCluster("ops", what: "rcMigratePlansThrottlesAndSurvivesItsOwnDeath")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        let other = try client.createTable("other")
        _ = try client.write(table: other, key: Array("k".utf8), value: Array("v".utf8))
        let source = try client.owner(table: table, keyHash: 0)
        let destination = try #require(try Self.masters(client).first { $0 != source })
        let storage = ["--storage", state.externalStorage]
        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage))
        let owners = { () throws -> [UInt64] in
            try [0, 1 << 62, 1 << 63, .max].map { try client.owner(table: table, keyHash: $0) }
                + [try client.owner(table: other, keyHash: 0)]
        }
        let before = try owners()

        // plan: the source's count, a rate and its basis; nothing changes.
        let plan = try Self.rcMigrate(["plan", "--table", "ops", "--to", String(destination), "--json"] + storage)
        #expect(plan.status == 0, "plan: \(plan.err)")
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.out.utf8)) as? [String: Any])
        let bytes = try #require(planned["bytes"] as? Int)
        #expect(planned["objects"] as? Int == 20_000, "plan counts every object: \(plan.out)")
        #expect(bytes > 20_000 * 8, "and their bytes: \(plan.out)")
        #expect((planned["estimatedSeconds"] as? Double ?? 0) > 0 && (planned["rateBasis"] as? String ?? "").contains("raw transfer"),
                "an estimate from the probe (no migration has finished yet): \(plan.out)")
        #expect(try owners() == before && (try store.list()).isEmpty, "plan changed nothing")
        // The throttle sets the rate the estimate uses: 4 s for the table.
        let rate = Double(bytes) / 4 / 1e6
        let throttled = try Self.rcMigrate(["plan", "--table", "ops", "--to", String(destination), "--json",
                                            "--throttle", String(rate)] + storage)
        let estimate = (try JSONSerialization.jsonObject(with: Data(throttled.out.utf8)) as? [String: Any])?["estimatedSeconds"] as? Double
        #expect(abs((estimate ?? 0) - 4) < 0.1, "estimate at the throttle: \(throttled.out) \(throttled.err)")

        // start --throttle --wait, killed with SIGKILL once data moves.
        let follower = try ClientProgram.launch(launcher, name: "client1", program: try #require(ClientProgram.rcMigrate),
                                                ["start", "--table", "ops", "--to", String(destination), "--throttle",
                                                 String(rate), "--wait", "--json"] + storage, label: "start")
        var record: MigrationRecord?
        for _ in 0..<300 {
            record = try store.list().first
            if let r = record, r.phase == .moving, r.bytesMoved > 0 { break }
            usleep(50_000)
        }
        let first = try #require(record, "a record appeared")
        kill(follower.process.processIdentifier, SIGKILL)
        follower.process.waitUntilExit()
        #expect(first.phase == .moving && first.throttleBytesPerSecond == UInt64(rate * 1e6), "\(first)")

        // The rate, over at least a second of the throttled run.
        usleep(1_200_000)
        let later = try #require(try store.load(first.id))
        let measured = Double(later.bytesMoved - first.bytesMoved) / (Double(later.updatedAt - first.updatedAt) / 1000)
        print(String(format: "throttle %.3f MB/s, measured %.3f MB/s over %d ms", rate, measured / 1e6,
                     later.updatedAt - first.updatedAt))
        #expect(later.phase == .moving && later.progress < 1, "still running after rc-migrate died: \(later)")
        #expect(measured <= rate * 1e6 * 1.3, "the throttle holds the rate")

        // While it runs: a second migration over the tablet, and one over
        // the limit, are refused; nothing changes.
        let busy = try Self.rcMigrate(["start", "--table", "ops", "--first-hash", "0x8000000000000000",
                                       "--to", String(destination)] + storage)
        #expect(busy.status == 1 && busy.err.contains("is already being moved by migration \(first.id.rawValue)"),
                "\(busy.status) \(busy.err)")
        let otherOwner = try client.owner(table: other, keyHash: 0)
        let overLimit = try Self.rcMigrate(["start", "--table", "other", "--to", String(otherOwner == source ? destination : source),
                                            "--max-active", "1"] + storage)
        #expect(overLimit.status == 1 && overLimit.err.contains("the limit is 1"), "\(overLimit.status) \(overLimit.err)")
        #expect(try store.list().count == 1, "no record for a refused start")
        #expect(try client.owner(table: other, keyHash: 0) == before[4])

        // throttle 0 lifts the limit; a new rc-migrate follows to the end.
        let lifted = try Self.rcMigrate(["throttle", String(first.id.rawValue), "0"] + storage)
        #expect(lifted.status == 0, "throttle: \(lifted.err)")
        let watched = try Self.rcMigrate(["status", String(first.id.rawValue), "--watch", "--json"] + storage, timeout: 120)
        #expect(watched.status == 0 && watched.out.contains("\"phase\":\"done\""), "status --watch: \(watched.out) \(watched.err)")
        #expect(try client.owner(table: table, keyHash: 0) == destination && (try client.owner(table: table, keyHash: .max)) == destination)
        for i in stride(from: 0, to: 20_000, by: 997) {
            #expect(try client.read(table: table, key: Array("key\(i)".utf8)) != nil, "key\(i) reads back")
        }
        let ended = try Self.rcMigrate(["throttle", String(first.id.rawValue), "5"] + storage)
        #expect(ended.status == 1 && ended.err.contains("has ended"), "\(ended.err)")

        // The exporter: one collection on stdout, and the same served over
        // HTTP until it is stopped.
        let once = try Self.rcMigrate(["metrics", "--once"] + storage)
        let m = "migration=\"\(first.id.rawValue)\",table=\"\(table)\",strategy=\"fulva\""
        #expect(once.status == 0 && once.out.contains("fulva_migrations{phase=\"done\"} 1.0")
                && once.out.contains("fulva_migration_progress_ratio{\(m)} 1.0")
                && once.out.contains("fulva_migration_phase_seconds{\(m),phase=\"moving\"}")
                && once.out.contains("fulva_priority_pulls_total{server=\"\(destination)\"}"), "metrics --once: \(once.out) \(once.err)")
        let moved = once.out.split(separator: "\n").first { $0.hasPrefix("fulva_migration_bytes_moved{\(m)}") }
        #expect(moved.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } == Double(bytes),
                "the bytes moved are the bytes plan counted: \(moved ?? "none")")
        // Under timeout(1): the exporter serves until stopped, and must not
        // outlive a test process that dies before its defer runs. timeout
        // leads a process group of its own with the exporter in it; the
        // group is stopped with SIGKILL, which no inherited mask blocks.
        let exporter = try ClientProgram.launch(launcher, name: "client1", program: "/usr/bin/timeout",
                                                ["60", try #require(ClientProgram.rcMigrate), "metrics",
                                                 "--listen", "127.0.0.1:16499", "--interval", "0.2"] + storage,
                                                label: "metrics")
        let group = -exporter.process.processIdentifier
        defer { if exporter.process.isRunning { kill(group, SIGKILL) } }
        var scraped = ""
        for _ in 0..<50 where !scraped.contains("fulva_exporter_collections_total") {
            usleep(200_000)
            scraped = (try? HostCommand.execute(["/usr/bin/curl", "-sf", "--max-time", "5", "http://127.0.0.1:16499/metrics"],
                                                timeout: 10).output) ?? ""
        }
        #expect(scraped.contains("fulva_migrations{phase=\"done\"} 1.0") && scraped.contains("fulva_exporter_collections_total"),
                "scraped: \(scraped)")
        kill(group, SIGKILL)
        exporter.process.waitUntilExit()

        // A later plan takes its rate from the finished migration.
        let replan = try Self.rcMigrate(["plan", "--table", "ops", "--to", String(source)] + storage)
        #expect(replan.status == 0 && replan.out.contains("median of the last 1 finished fulva"), "\(replan.out) \(replan.err)")

        // A coordinator that does not answer (stopped, not dead: ZooKeeper
        // still names it): an error within --cluster-timeout.
        let coordinator = try #require(state.process("coordinator"))
        kill(coordinator.pid, SIGSTOP)
        defer { kill(coordinator.pid, SIGCONT) }
        let clock = Date()
        let silent = try Self.rcMigrate(["start", "--table", "ops", "--to", String(source), "--cluster-timeout", "3"] + storage,
                                        timeout: 60)
        #expect(silent.status == 1 && silent.err.contains("did not answer within 3 s"), "\(silent.status) \(silent.err)")
        #expect(Date().timeIntervalSince(clock) < 30)
        kill(coordinator.pid, SIGCONT)
        #expect(try store.list().count == 1, "nothing was written")
    }

    /// Three migrations of disjoint tablets, started at once by three
    /// rc-migrate processes, finish while protocol clients run the mixed
    /// workload over the whole table; the history is linearizable, nothing
    /// failed, and the destination ends with exactly the state the history
    /// implies.
    @Test func threeConcurrentMigrationsOfDisjointTablets() throws {
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let cluster = try TestCluster(Self.spec(), seconds: 400, what: "threeConcurrentMigrationsOfDisjointTablets")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let table = try admin.createTable("three")
        let keys = 60_000
        let initial = try Self.fillProtocolTable(admin, table: table, keys: keys)
        let source = try admin.owner(table: table, keyHash: 0)
        let destination = try #require(try Self.masters(admin).first { $0 != source })

        let load = ProtocolLoad(library: library, coordinator: state.externalStorage, table: table, keys: keys, clients: 3)
        defer { _ = load.finish() }
        for _ in 0..<600 where load.recorder.count < 3000 { usleep(50_000) }
        #expect(load.recorder.count >= 3000, "the clients are running: \(load.errors.all.prefix(3))")

        let thirds: [(String, String)] = [("0", "0x5555555555555554"), ("0x5555555555555555", "0xaaaaaaaaaaaaaaa9"),
                                          ("0xaaaaaaaaaaaaaaaa", "0xffffffffffffffff")]
        let program = try #require(ClientProgram.rcMigrate)
        let migrationStart = monotonicNanos()
        let starts = try thirds.enumerated().map { index, range in
            try ClientProgram.launch(launcher, name: "client1", program: program,
                                     ["start", "--table", "three", "--first-hash", range.0, "--last-hash", range.1,
                                      "--to", String(destination), "--wait", "--json", "--storage", state.externalStorage],
                                     label: "start\(index)")
        }
        var results: [String] = []
        for start in starts {
            results.append(String(decoding: try start.finish(timeout: 180), as: UTF8.self))
            #expect(start.process.terminationStatus == 0,
                    "rc-migrate start: \((try? String(contentsOfFile: start.log, encoding: .utf8)) ?? "")")
        }
        let migrationEnd = monotonicNanos()
        usleep(300_000)
        #expect(load.finish(), "the clients stopped")
        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage))
        let records = try store.list()
        #expect(records.count == 3 && records.allSatisfy { $0.phase == .done }, "\(records.map { "\($0.id) \($0.phase)" })")
        #expect(Set(records.map(\.tablet)).count == 3, "three disjoint tablets")
        let overlapped = records.allSatisfy { a in records.allSatisfy { b in a.createdAt <= b.updatedAt && b.createdAt <= a.updatedAt } }
        print("three migrations: \(records.map { "\($0.id) \($0.updatedAt - $0.createdAt) ms" }), overlapping: \(overlapped)")
        for hash: UInt64 in [0, 0x5555_5555_5555_5555, 0xaaaa_aaaa_aaaa_aaaa, .max] {
            #expect(try admin.owner(table: table, keyHash: hash) == destination)
        }

        var operations = load.recorder.all
        // No operation fails, but for one that a stall of the whole host
        // (logged by the servers themselves) kept past its deadline.
        let failed = operations.filter(\.failed)
        let unexplained = DispatcherStalls(state).unexplained(failed)
        #expect(unexplained.isEmpty, "failed operations: \(unexplained.prefix(3)) \(load.errors.all.prefix(5))")
        print("three migrations under load: \(operations.count) operations, \(failed.count) failed "
            + "(\(failed.count - unexplained.count) during a host stall), "
            + "\(operations.filter(\.routing.dualRead).count) dual reads")
        let verifier = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let final = try Self.finalState(verifier, server: ServerID(destination), table: table, keys: keys,
                                        client: 3, firstID: operations.count)
        operations += final.reads
        #expect(final.tagged == 0, "the destination owns every third normally")
        let history = History(operations: operations, initialValues: initial,
                              timeline: MigrationTimeline(startedAt: migrationStart, endedAt: migrationEnd))
        let result = LinearizabilityChecker.check(history)
        #expect(result.isLinearizable, "\(result.violations.prefix(2))")
        #expect(try admin.inventory(server: ServerID(source), tablet: Tablet(tableID: table)).objects == 0,
                "the source holds nothing of the table")

        // The masters counted the dual reads' source halves and the
        // priority pulls; the exporter reports them per server.
        let counters = try admin.serverCounters()
        let sourceReads = counters.first { $0.serverID == source }?.sourceReads ?? 0
        let priorityPulls = counters.first { $0.serverID == destination }?.priorityPulls ?? 0
        print("counters: source reads \(sourceReads), priority pulls \(priorityPulls)")
        #expect(sourceReads > 0 && priorityPulls > 0, "\(counters)")
        let exported = try Self.rcMigrate(["metrics", "--once", "--storage", state.externalStorage])
        #expect(exported.out.contains("fulva_source_reads_total{server=\"\(source)\"} \(sourceReads)")
                && exported.out.contains("fulva_migrations{phase=\"done\"} 3.0"), "\(exported.out) \(exported.err)")
    }
}

extension FulvaMigrationTests {
    /// The destination is killed with SIGKILL mid-migration (replicas 1):
    /// `rc-migrate status` marks the record FAILED with the cause; a table
    /// on the source never stops serving; RAMCloud's crash recovery
    /// recovers the destination's log into the source's frozen copy
    /// (ramcloud-patches/0029), so every write the clients saw acknowledged
    /// at the destination (new keys, overwrites, removes) reads back from
    /// the source, and so does every key not yet moved.
    @Test func aDestinationKilledMidMigrationIsRecoveredIntoTheSource() throws {
        var spec = Self.spec()
        spec.replicas = 1
        spec.backupServers = 1
        let cluster = try TestCluster(spec, seconds: 300, what: "aDestinationKilledMidMigrationIsRecoveredIntoTheSource")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        _ = try ClientProgram.run(launcher, name: "client1", ["fill", "--keys", "20000", "--table", "fx"], timeout: 120)
        let library = try RAMCloudLibrary(path: Build.home.library)
        let client = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let table = try client.tableID("fx")
        let source = try client.owner(table: table, keyHash: 0)
        // The servers, by the ids their logs announce (RAMCloud writes a
        // ServerId as index.generation); the backup server holds no tablets.
        var masters: [String: UInt64] = [:]
        var backup: UInt64 = 0
        for name in ["master1", "master2", "backup1"] {
            let log = try String(contentsOfFile: try #require(state.process(name)).log, encoding: .utf8)
            let line = try #require(log.split(separator: "\n").first { $0.contains("My server ID is ") })
            let parts = try #require(line.split(separator: " ").last).split(separator: ".").compactMap { UInt64($0) }
            if name == "backup1" { backup = parts[1] << 32 | parts[0] } else { masters[name] = parts[1] << 32 | parts[0] }
        }
        let destination = try #require(masters.values.first { $0 != source })
        let storage = ["--storage", state.externalStorage]
        // The backup server is up but no master: no migration goes to it.
        let servers = try client.serverCounters().map(\.serverID)
        #expect(Set(servers) == Set(masters.values), "the counters are the masters': \(servers)")
        let toBackup = try Self.rcMigrate(["start", "--table", "fx", "--to", String(backup)] + storage)
        #expect(toBackup.status == 1 && toBackup.err.contains("not a live master"), "\(toBackup.err)")
        // A table that stays on the source throughout.
        let steady = try Self.steadyTable(client, on: source, storage: storage)
        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage))
        let id = try Self.startSlowMigration(client, store, table: "fx", id: table, from: source, to: destination,
                                             storage: storage)

        let acknowledged = try Self.writeAtTheDestination(client, table: table)
        let before = try #require(try store.load(MigrationID(id)))
        #expect(before.phase == .moving && before.progress < 1, "still moving when the destination dies: \(before)")

        // The steady table is read and written all along. Reads answer
        // within one RPC timeout (2 s) throughout (the longest seen: 1.5 s,
        // while the source's dispatch thread lagged with the dead server's
        // RPCs timing out); a write waits while the source's open segment
        // still has its replica on the dead server's backup (until the
        // coordinator declares the crash and the source re-replicates:
        // RAMCloud's own durability rule), but never fails.
        let prober = SteadyProber(library: library, coordinator: state.externalStorage, table: steady,
                                  readBound: Double(spec.rpcTimeoutMillis) / 1000)
        defer { _ = prober.stop() }

        let victimName = try #require(masters.first { $0.value == destination }?.key)
        let victim = try #require(state.process(victimName))
        kill(victim.pid, SIGKILL)
        let killedAt = Date()

        // status marks the record FAILED, naming the dead destination.
        try Self.expectFailedStatus(id, storage: storage, naming: "destination server \(destination) crashed")

        // RAMCloud recovers the tablet into the source.
        var owner: UInt64 = destination
        for _ in 0..<240 where owner != source {
            usleep(250_000)
            owner = (try? client.owner(table: table, keyHash: 0)) ?? destination
        }
        print(String(format: "destination killed; the source owns the table again after %.1f s", Date().timeIntervalSince(killedAt)))
        #expect(owner == source, "the source owns the table after recovery")
        usleep(500_000)
        prober.expectKeptServing(deadServerTimeoutMillis: spec.deadServerTimeoutMillis)

        try Self.expectReadable(acknowledged, client, table: table)
    }
}

extension FulvaMigrationTests {
    /// The source is killed with SIGKILL mid-migration (replicas 1):
    /// `rc-migrate status` marks the record FAILED with the cause; a table
    /// on the destination keeps serving; the coordinator's recovery of the
    /// source hands the source's entries of the migrating tablet to the
    /// destination (ramcloud-patches/0030), which replays them under what
    /// it holds, so every acknowledged write made at the destination (new
    /// keys, overwrites, removes) and every key not yet moved reads back
    /// from the destination.
    @Test func aSourceKilledMidMigrationIsRecoveredIntoTheDestination() throws {
        var spec = Self.spec()
        spec.replicas = 1
        spec.backupServers = 1
        let cluster = try TestCluster(spec, seconds: 300, what: "aSourceKilledMidMigrationIsRecoveredIntoTheDestination")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        _ = try ClientProgram.run(launcher, name: "client1", ["fill", "--keys", "20000", "--table", "sx"], timeout: 120)
        let library = try RAMCloudLibrary(path: Build.home.library)
        let client = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let table = try client.tableID("sx")
        let source = try client.owner(table: table, keyHash: 0)
        let destination = try #require(try Self.masters(client).first { $0 != source })
        let storage = ["--storage", state.externalStorage]
        // A table that stays on the destination throughout.
        let steady = try Self.steadyTable(client, on: destination, storage: storage)
        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage))
        let id = try Self.startSlowMigration(client, store, table: "sx", id: table, from: source, to: destination,
                                             storage: storage)

        let acknowledged = try Self.writeAtTheDestination(client, table: table)
        let before = try #require(try store.load(MigrationID(id)))
        #expect(before.phase == .moving && before.progress < 0.9, "still moving when the source dies: \(before)")

        // The steady table on the destination is read and written all
        // along: reads answer within the crash declaration plus one RPC
        // timeout (7 s; the longest seen: 5.9 s, the destination's dispatch
        // thread lagging until the crash was declared, then replaying the
        // source's entries), and writes wait at most while the
        // destination's open segment has its replica on the dead server
        // (until the crash is declared and it re-replicates), never fail.
        let prober = SteadyProber(library: library, coordinator: state.externalStorage, table: steady,
                                  readBound: Double(spec.deadServerTimeoutMillis + spec.rpcTimeoutMillis) / 1000)
        defer { _ = prober.stop() }

        let victimName = try #require(["master1", "master2"].first { name in
            let log = (try? String(contentsOfFile: state.process(name)?.log ?? "", encoding: .utf8)) ?? ""
            guard let line = log.split(separator: "\n").first(where: { $0.contains("My server ID is ") }),
                  let parts = line.split(separator: " ").last?.split(separator: ".").compactMap({ UInt64($0) }),
                  parts.count == 2 else { return false }
            return parts[1] << 32 | parts[0] == source
        })
        let victim = try #require(state.process(victimName))
        kill(victim.pid, SIGKILL)
        let killedAt = Date()

        // status marks the record FAILED, naming the dead source.
        try Self.expectFailedStatus(id, storage: storage, naming: "source server \(source) crashed")

        // RAMCloud recovers the source; the destination's log says when
        // the source's entries of the tablet were recovered there.
        let destinationLog = try #require(state.process(victimName == "master1" ? "master2" : "master1")).log
        var recovered = false
        for _ in 0..<240 where !recovered {
            usleep(250_000)
            let log = (try? String(contentsOfFile: destinationLog, encoding: .utf8)) ?? ""
            recovered = log.contains("its source crashed; recovering") && log.contains("Reporting completion of recovery")
        }
        #expect(recovered, "the destination recovered the source's entries")
        let verifier = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        var readable = false
        for _ in 0..<120 where !readable {
            readable = (try? verifier.read(table: table, key: Array("new0".utf8))) != nil
            if !readable { usleep(250_000) }
        }
        print(String(format: "source killed; the destination serves the whole table after %.1f s", Date().timeIntervalSince(killedAt)))
        #expect(try client.owner(table: table, keyHash: 0) == destination, "the destination owns the table")
        usleep(500_000)
        prober.expectKeptServing(deadServerTimeoutMillis: spec.deadServerTimeoutMillis)

        try Self.expectReadable(acknowledged, verifier, table: table)
        #expect(try verifier.inventory(server: ServerID(destination), tablet: Tablet(tableID: table)).objects == 20_000 - 10 + 200,
                "the destination holds the whole table")
    }
}

extension FulvaMigrationTests {
    /// What a client writes at a migration's destination mid-migration and
    /// sees acknowledged (new keys, overwrites of keys not yet moved,
    /// removes), by key; nil for a removed key.
    static func writeAtTheDestination(_ client: RAMCloudClient, table: UInt64) throws -> [String: String?] {
        var acknowledged: [String: String?] = [:]
        for i in 0..<200 {
            _ = try client.write(table: table, key: Array("new\(i)".utf8), value: Array("v\(i)".utf8))
            acknowledged["new\(i)"] = "v\(i)"
        }
        for i in 0..<50 {
            _ = try client.write(table: table, key: Array("key\(i)".utf8), value: Array("over\(i)".utf8))
            acknowledged["key\(i)"] = "over\(i)"
        }
        for i in 50..<60 {
            try client.remove(table: table, key: Array("key\(i)".utf8))
            acknowledged["key\(i)"] = String?.none
        }
        return acknowledged
    }

    /// Every acknowledged write reads back, and so does every filled key
    /// (fulva-workload fill's "keyN") the writes left alone.
    static func expectReadable(_ acknowledged: [String: String?], _ client: RAMCloudClient, table: UInt64) throws {
        var wrong: [String] = []
        for (key, value) in acknowledged {
            let got = try client.read(table: table, key: Array(key.utf8)).map { String(decoding: $0.value, as: UTF8.self) }
            if got != value { wrong.append("\(key): \(got ?? "absent") instead of \(value ?? "absent")") }
        }
        #expect(wrong.isEmpty, "acknowledged writes read back after recovery: \(wrong.prefix(5))")
        var missing = 0
        for i in stride(from: 60, to: 20_000, by: 7) where try client.read(table: table, key: Array("key\(i)".utf8)) == nil {
            missing += 1
        }
        #expect(missing == 0, "keys not yet moved are there: \(missing) missing")
    }

    /// A table created for the test that stays on `server` throughout.
    static func steadyTable(_ client: RAMCloudClient, on server: UInt64, storage: [String]) throws -> UInt64 {
        let steady = try client.createTable("steady")
        if try client.owner(table: steady, keyHash: 0) != server {
            let moved = try Self.rcMigrate(["start", "--table", "steady", "--to", String(server), "--wait"] + storage)
            #expect(moved.status == 0, "\(moved.err)")
        }
        return steady
    }

    /// Starts a migration of the whole table throttled to last about 8 s
    /// and returns its id once it moves data.
    static func startSlowMigration(_ client: RAMCloudClient, _ store: MigrationRecordStore, table name: String, id table: UInt64,
                                   from source: UInt64, to destination: UInt64, storage: [String]) throws -> UInt64 {
        let bytes = try client.inventory(server: ServerID(source), tablet: Tablet(tableID: table)).bytes
        let rate = Double(bytes) / 8 / 1e6
        let started = try Self.rcMigrate(["start", "--table", name, "--to", String(destination), "--throttle", String(rate)] + storage)
        #expect(started.status == 0, "\(started.err)")
        let id = try #require(UInt64(started.out.trimmingCharacters(in: .whitespacesAndNewlines)))
        for _ in 0..<200 {
            if let r = try store.load(MigrationID(id)), r.phase == .moving, r.bytesMoved > 0 { break }
            usleep(50_000)
        }
        return id
    }

    /// `rc-migrate status` marks the record FAILED with a cause naming the
    /// dead server (within 30 s).
    static func expectFailedStatus(_ id: UInt64, storage: [String], naming cause: String) throws {
        var status = (status: Int32(0), out: "", err: "")
        for _ in 0..<60 {
            status = try Self.rcMigrate(["status", String(id), "--json"] + storage, timeout: 30)
            if status.out.contains("\"phase\":\"failed\"") { break }
            usleep(500_000)
        }
        #expect(status.out.contains("\"phase\":\"failed\"") && status.out.contains(cause),
                "status after the kill: \(status.out) \(status.err)")
    }
}

/// Writes and reads a table that does not migrate, over and over on a
/// thread of its own, while a server dies: reads must answer (within 1 s
/// unless told otherwise) and read back what was written; a write may wait while its master's
/// open segment has its replica on the dead server (until the crash is
/// declared and the segment re-replicated: RAMCloud's durability rule),
/// but never fails.
final class SteadyProber: @unchecked Sendable {
    private let running = ManagedAtomic<Bool>(true)
    private let errors = HistoryErrors()
    private let count = ManagedAtomic<Int>(0)
    private let longestWriteMillis = ManagedAtomic<Int>(0)
    private let longestReadMillis = ManagedAtomic<Int>(0)
    private let done = DispatchSemaphore(value: 0)

    /// `readBound`: the longest a read may take, in seconds.
    init(library: RAMCloudLibrary, coordinator: String, table: UInt64, readBound: Double = 1) {
        let (running, errors, count, longest, longestRead, done) = (running, errors, count, longestWriteMillis,
                                                                    longestReadMillis, done)
        Thread {
            defer { done.signal() }
            guard let probe = try? RAMCloudClient(library: library, coordinator: coordinator) else {
                errors.add("no connection")
                return
            }
            var i = 0
            while running.load(ordering: .relaxed) {
                do {
                    var began = Date()
                    _ = try probe.write(table: table, key: Array("s\(i % 100)".utf8), value: Array("x\(i)".utf8))
                    let wrote = Int(Date().timeIntervalSince(began) * 1000)
                    if wrote > longest.load(ordering: .relaxed) { longest.store(wrote, ordering: .relaxed) }
                    began = Date()
                    let read = try probe.read(table: table, key: Array("s\(i % 100)".utf8))
                    if read.map({ String(decoding: $0.value, as: UTF8.self) }) != "x\(i)" { errors.add("s\(i % 100) read back wrong") }
                    let took = Date().timeIntervalSince(began)
                    if Int(took * 1000) > longestRead.load(ordering: .relaxed) {
                        longestRead.store(Int(took * 1000), ordering: .relaxed)
                    }
                    if took > readBound { errors.add(String(format: "a steady-table read took %.2f s", took)) }
                } catch {
                    errors.add("\(error)")
                }
                count.wrappingIncrement(ordering: .relaxed)
                i += 1
                usleep(2_000)
            }
        }.start()
    }

    /// Stops the thread and waits for it (at most 60 s: a write may be
    /// waiting for re-replication); returns whether it stopped.
    func stop() -> Bool {
        guard running.exchange(false, ordering: .relaxed) else { return true }
        return done.wait(timeout: .now() + 60) == .success
    }

    /// Call after the recovery: the table must go on serving (50 more
    /// writes and reads, within 30 s), then the prober stops. How many ran
    /// before depends on how long a write waited for re-replication, which
    /// depends on where the replica happened to be.
    func expectKeptServing(deadServerTimeoutMillis: Int) {
        let recovered = count.load(ordering: .relaxed)
        let deadline = Date().addingTimeInterval(30)
        while count.load(ordering: .relaxed) < recovered + 50 && Date() < deadline { usleep(20_000) }
        #expect(stop(), "the prober stopped")
        let longest = longestWriteMillis.load(ordering: .relaxed)
        let total = count.load(ordering: .relaxed)
        print("steady table: \(total) writes and reads (\(total - recovered) after the recovery), longest write "
            + "\(longest) ms, longest read \(longestReadMillis.load(ordering: .relaxed)) ms "
            + "(the coordinator declares a crash after \(deadServerTimeoutMillis) ms of silence)")
        #expect(errors.all.isEmpty, "the steady table kept serving: \(errors.all.prefix(3))")
        #expect(total - recovered >= 50, "the steady table serves after the recovery")
        #expect(longest < 30_000, "a write waited for the re-replication at most that long")
    }
}
