import Foundation
import FulvaCluster
import FulvaCore
import FulvaRAMCloud
import FulvaZooKeeper
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FulvaMigrationTests {
    /// A migration's window on the monotonic clock the client programs print.
    struct Window {
        var start: Int64
        var end: Int64
        func overlaps(_ start: Int64, _ end: Int64) -> Bool { start < self.end && end > self.start }
    }

    /// Output lines of a client program.
    static func outputLines(_ program: ClientProgram) -> Int {
        ((try? String(contentsOfFile: program.output, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    /// RAMCloud's Transaction API, from an unchanged C++ client, across
    /// migrations S→D and back: bank transfers that read two accounts, move
    /// a distinct amount between them and write a receipt, all in one
    /// transaction, on accounts none of which has moved when each migration
    /// starts. Afterwards every committed transfer's receipt exists and no
    /// aborted one's does, and every balance is exactly the opening balance
    /// plus what committed transfers moved: no acknowledged commit lost,
    /// none applied twice, nothing half-applied.
    @Test func transactionsAcrossMigrationsLoseAndRepeatNothing() throws {
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let cluster = try TestCluster(Self.spec(), seconds: 420, what: "transactionsAcrossMigrationsLoseAndRepeatNothing")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        let program = try Self.buildClient("transaction_client.cc")
        defer { unlink(program) }
        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let table = try admin.createTable("bank")
        let accounts = 60
        let opening: Int64 = 1_000_000
        for i in 0..<accounts {
            _ = try admin.write(table: table, key: Array("a\(i)".utf8), value: Self.bytes(opening))
        }
        // Other objects of the table, so that each move takes a while.
        for i in 0..<30_000 {
            _ = try admin.write(table: table, key: Self.protocolKey(i), value: Self.bytes(Int64(i)))
        }
        let first = try admin.owner(table: table, keyHash: 0)
        let second = try #require(try Self.masters(admin).first { $0 != first })

        let stopFile = launcher.directory + "/transaction-clients-stop"
        unlink(stopFile)
        // Two clients, pausing 4 ms between transfers: more starves the
        // masters of a 2-core host (RAMCloud clients poll while they wait).
        let clients = 2
        let programs = try (0..<clients).map { c in
            try ClientProgram.launch(launcher, name: "client\(c + 1)", program: program,
                                     [state.externalStorage, "main", "bank", String(accounts), String(c), stopFile,
                                      "100000", "4000"],
                                     label: "transactions", environment: ["FULVA_PLUGIN": RAMCloudHome.pluginPath,
                                                                          "RAMCLOUD_IDLE_SLEEP": "1"])
        }
        defer {
            FileManager.default.createFile(atPath: stopFile, contents: nil)
            for p in programs where p.process.isRunning { kill(p.process.processIdentifier, SIGKILL) }
        }
        let warm = Date().addingTimeInterval(60)
        while programs.map(Self.outputLines).reduce(0, +) < 200 && Date() < warm { usleep(100_000) }
        let windows = try Self.migrateThereAndBack(admin, state, table: table, from: first, to: second)
        FileManager.default.createFile(atPath: stopFile, contents: nil)

        struct Transfer {
            var client: Int, seq: Int, from: String, to: String, amount: Int64, outcome: String
            var start: Int64, end: Int64
        }
        var transfers: [Transfer] = []
        for p in programs {
            let data = try p.finish(timeout: 120)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let f = line.split(separator: " ").map(String.init)
                guard f.count == 9, f[0] == "transfer", let client = Int(f[1]), let seq = Int(f[2]),
                      let amount = Int64(f[5]), let start = Int64(f[7]), let end = Int64(f[8]) else {
                    Issue.record("unreadable transfer line: \(line)")
                    continue
                }
                transfers.append(Transfer(client: client, seq: seq, from: f[3], to: f[4], amount: amount,
                                          outcome: f[6], start: start, end: end))
            }
        }
        let committed = transfers.filter { $0.outcome == "committed" }
        let failed = transfers.filter { $0.outcome != "committed" && $0.outcome != "aborted" }
        let during = committed.filter { t in windows.contains { $0.overlaps(t.start, t.end) } }
        let latencies = transfers.map { $0.end - $0.start }.sorted()
        print("transactions across migrations: \(transfers.count) transfers, \(committed.count) committed "
            + "(\(during.count) overlapping a migration), \(transfers.count - committed.count - failed.count) aborted, "
            + "\(failed.count) failed; commit latency p50 \(latencies[latencies.count / 2] / 1000) us, "
            + "p99 \(latencies[latencies.count * 99 / 100] / 1000) us, max \(latencies.last! / 1000) us; "
            + "migrations \(windows.map { ($0.end - $0.start) / 1_000_000 }) ms")
        #expect(failed.isEmpty, "transfers with an unknown outcome: \(failed.prefix(3).map { "\($0.outcome)" })")
        #expect(committed.count > 100, "transfers committed")
        #expect(during.count > 0, "transfers committed while the table migrated")

        // The final state, from the owner after both migrations.
        #expect(try admin.owner(table: table, keyHash: 0) == first)
        var expected = [String: Int64]()
        for i in 0..<accounts { expected["a\(i)"] = opening }
        for t in committed {
            expected[t.from, default: 0] -= t.amount
            expected[t.to, default: 0] += t.amount
        }
        var total: Int64 = 0
        for i in 0..<accounts {
            let key = "a\(i)"
            let found = try #require(try admin.read(table: table, key: Array(key.utf8)), "account \(key) exists")
            let balance = found.value.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
            total += balance
            #expect(balance == expected[key], "\(key): \(balance), committed transfers imply \(expected[key] ?? 0)")
        }
        #expect(total == Int64(accounts) * opening, "money is neither made nor lost")
        var lost = 0
        var ghosts = 0
        for t in transfers {
            let receipt = try admin.read(table: table, key: Array("r\(t.client)-\(t.seq)".utf8))
            if t.outcome == "committed" && receipt == nil { lost += 1 }
            if t.outcome == "aborted" && receipt != nil { ghosts += 1 }
        }
        #expect(lost == 0, "\(lost) committed transfers have no receipt")
        #expect(ghosts == 0, "\(ghosts) aborted transfers left a receipt")

        let pulls = try Self.priorityPulls(state)
        print("priority pulls per migration: \(pulls)")
        #expect(pulls.count == 2 && pulls.values.allSatisfy { $0 > 0 },
                "prepares at the destination fetched keys not yet moved")
    }

    /// Enumeration (TableEnumerator) and secondary-index range lookups
    /// (IndexLookup), from an unchanged C++ client, while the table migrates
    /// S→D and back, and while the same clients write new objects: every
    /// answer holds every object of the table exactly once and every new
    /// object its client wrote before asking. Neither the source's frozen
    /// copy (which misses writes at the destination) nor the destination's
    /// partial one answers them; they wait for the move and then read the
    /// new owner.
    @Test func enumerationAndIndexLookupsNeverSeeHalfATablet() throws {
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let cluster = try TestCluster(Self.spec(), seconds: 420, what: "enumerationAndIndexLookupsNeverSeeHalfATablet")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        let program = try Self.buildClient("whole_tablet_client.cc")
        defer { unlink(program) }
        let objects = 20_000
        let fill = try ClientProgram.launch(launcher, name: "filler", program: program,
                                            [state.externalStorage, "main", "fill", "indexed", String(objects)],
                                            label: "fill", environment: ["FULVA_PLUGIN": "none"])
        let filled = String(decoding: try fill.finish(timeout: 180), as: UTF8.self)
        try #require(filled.contains("filled \(objects)"), "fill: \(filled) \(fill.tail)")

        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let table = try admin.tableID("indexed")
        let first = try admin.owner(table: table, keyHash: 0)
        let second = try #require(try Self.masters(admin).first { $0 != first })

        let stopFile = launcher.directory + "/whole-tablet-clients-stop"
        unlink(stopFile)
        let programs = try (0..<2).map { c in
            try ClientProgram.launch(launcher, name: "client\(c + 1)", program: program,
                                     [state.externalStorage, "main", "run", "indexed", String(objects), String(c),
                                      stopFile, "10000"],
                                     label: "whole-tablet", environment: ["FULVA_PLUGIN": RAMCloudHome.pluginPath,
                                                                          "RAMCLOUD_IDLE_SLEEP": "1"])
        }
        defer {
            FileManager.default.createFile(atPath: stopFile, contents: nil)
            for p in programs where p.process.isRunning { kill(p.process.processIdentifier, SIGKILL) }
        }
        let warm = Date().addingTimeInterval(60)
        while programs.map(Self.outputLines).min()! < 4 && Date() < warm { usleep(100_000) }
        let windows = try Self.migrateThereAndBack(admin, state, table: table, from: first, to: second)
        FileManager.default.createFile(atPath: stopFile, contents: nil)

        struct Answer { var kind: String, outcome: String, start: Int64, end: Int64 }
        var answers: [Answer] = []
        for p in programs {
            let data = try p.finish(timeout: 120)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let f = line.split(separator: " ").map(String.init)
                guard f.count == 8, let start = Int64(f[6]), let end = Int64(f[7]) else {
                    Issue.record("unreadable line: \(line)")
                    continue
                }
                answers.append(Answer(kind: f[0], outcome: f[5], start: start, end: end))
                if f[5] != "ok" { Issue.record("\(line): filled seen/filled, own seen/own written") }
            }
        }
        for kind in ["enumerate", "index"] {
            let all = answers.filter { $0.kind == kind }
            let overlapping = all.filter { a in windows.contains { $0.overlaps(a.start, a.end) } }
            let longest = overlapping.map { ($0.end - $0.start) / 1_000_000 }.max() ?? 0
            print("\(kind): \(all.count) answers, \(all.filter { $0.outcome == "ok" }.count) complete, "
                + "\(overlapping.count) overlapping a migration (longest \(longest) ms); "
                + "migrations \(windows.map { ($0.end - $0.start) / 1_000_000 }) ms")
            #expect(all.count >= 4 && all.allSatisfy { $0.outcome == "ok" }, "every \(kind) answer was complete")
            #expect(!overlapping.isEmpty, "some \(kind) ran while the table migrated")
        }
        #expect(try admin.owner(table: table, keyHash: 0) == first)
    }
    /// RAMCloud's own client app (`client`, apps/ClientMain.cc: writes,
    /// reads back and removes a run of objects), unchanged, runs while its
    /// table migrates S→D and back, and finishes without an error.
    @Test func ramcloudsOwnClientAppRunsThroughMigrations() throws {
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let cluster = try TestCluster(Self.spec(), seconds: 300, what: "ramcloudsOwnClientAppRunsThroughMigrations")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        // ClientMain creates (or opens) table "test"; other objects make each move take a while.
        let table = try admin.createTable("test")
        for i in 0..<20_000 {
            _ = try admin.write(table: table, key: Self.protocolKey(i), value: Self.bytes(Int64(i)))
        }
        let first = try admin.owner(table: table, keyHash: 0)
        let second = try #require(try Self.masters(admin).first { $0 != first })
        let app = try ClientProgram.launch(
            launcher, name: "client1", program: Build.home.path + "/bin/client",
            ["--externalStorage", state.externalStorage, "--clusterName", "main", "--number", "40000",
             "--size", "100", "--removals", "1000", "--logLevel", "NOTICE"],
            label: "ramcloud-client", environment: ["FULVA_PLUGIN": RAMCloudHome.pluginPath, "RAMCLOUD_IDLE_SLEEP": "1"])
        defer { if app.process.isRunning { kill(app.process.processIdentifier, SIGKILL) } }
        let logged = { ((try? String(contentsOfFile: app.log, encoding: .utf8)) ?? "")
            + ((try? String(contentsOfFile: app.output, encoding: .utf8)) ?? "") }
        let started = Date().addingTimeInterval(60)
        while !logged().contains("Performing 40000 writes") && app.process.isRunning && Date() < started {
            usleep(20_000)
        }
        _ = try Self.migrateThereAndBack(admin, state, table: table, from: first, to: second)
        #expect(app.process.isRunning, "the app was still at work when both migrations were done")
        _ = try app.finish(timeout: 240)
        let text = logged()
        #expect(app.process.terminationStatus == 0, "client exited \(app.process.terminationStatus): \(app.tail)")
        #expect(text.contains("Reading all of the objects just inserted") && text.contains("avg read took"),
                "the app wrote and read back all its objects: \(app.tail)")
        #expect(!text.contains("RAMCloud exception"), "\(app.tail)")
    }
}
