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
    /// Migrates the whole table S→D and straight back with `strategy`:
    /// Fulva or rocksteady through the plugin, or RAMCloud's own
    /// source-driven migrateTablet. Returns the two windows.
    static func migrateThereAndBack(_ admin: RAMCloudClient, _ state: ClusterState, table: UInt64,
                                    from first: UInt64, to second: UInt64, strategy: Strategy = .fulva) throws -> [Window] {
        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage))
        var windows: [Window] = []
        for (source, destination) in [(first, second), (second, first)] {
            let start = monotonicNanos()
            if strategy == .source {
                try admin.migrateTablet(tableID: table, firstKeyHash: 0, lastKeyHash: .max, newOwner: destination)
            } else {
                let record = try Self.migrate(admin, store, table: table, from: source, to: destination,
                                              strategy: strategy)
                #expect(record.phase == .done, "\(strategy) \(source)→\(destination): \(record.lastError ?? "")")
            }
            windows.append(Window(start: start, end: monotonicNanos()))
            #expect(try admin.owner(table: table, keyHash: 0) == destination)
        }
        return windows
    }

    /// Each strategy under the mixed workload of unchanged C clients
    /// (CRamCloud.h, with the shim): 40% of the operations on 200 hot keys,
    /// none of which has moved when a migration starts; the table migrates
    /// S→D and straight back. The checker finds every history linearizable
    /// (with a final read of every key); Fulva and rocksteady fail no
    /// operation (no answer within 1 s counts as failed); RAMCloud's
    /// source-driven migration is measured the same way. Rocksteady's
    /// destination fetches keys not yet moved and answers "retry", so its
    /// clients read nothing from both servers.
    @Test(arguments: [Strategy.fulva, .rocksteady, .source])
    func strategiesUnderTheMixedWorkload(_ strategy: Strategy) throws {
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let cluster = try TestCluster(Self.spec(), seconds: 420, what: "strategiesUnderTheMixedWorkload(\(strategy))")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        let program = try Self.buildClient("history_client.c")
        defer { unlink(program) }
        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let keys = 30_000
        let (table, initial, first, second) = try Self.checkedTable(admin, name: "mixed", keys: keys)

        let stopFile = launcher.directory + "/mixed-clients-stop"
        let countersFile = launcher.directory + "/mixed-counters.log"
        unlink(stopFile)
        unlink(countersFile)
        let clients = 3
        let programs = try Self.launchHistoryClients(launcher, state, program: program, table: "mixed", keys: keys,
                                                     count: clients, stopFile: stopFile, countersFile: countersFile,
                                                     label: "mixed-\(strategy)")
        defer {
            FileManager.default.createFile(atPath: stopFile, contents: nil)
            for p in programs where p.process.isRunning { kill(p.process.processIdentifier, SIGKILL) }
        }
        let warm = Date().addingTimeInterval(60)
        while programs.map(Self.outputLines).reduce(0, +) < 2000 && Date() < warm { usleep(100_000) }
        let windows = try Self.migrateThereAndBack(admin, state, table: table, from: first, to: second,
                                                   strategy: strategy)
        usleep(500_000)
        FileManager.default.createFile(atPath: stopFile, contents: nil)

        var operations: [RecordedOperation] = []
        for (c, p) in programs.enumerated() {
            let data = try p.finish(timeout: 120)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                if let op = Self.historyLine(line, id: operations.count, client: c) { operations.append(op) }
            }
        }
        let timeline = MigrationTimeline(startedAt: windows.first!.start, endedAt: windows.last!.end)
        let figures = HistoryFigures(History(operations: operations, initialValues: initial, timeline: timeline))
        let ms = { (ns: Int64?) in ns.map { String(format: "%.1f ms", Double($0) / 1e6) } ?? "-" }
        let us = { (p: LatencyPercentiles?) in
            p.map { "p50 \($0.p50 / 1000) us, p99 \($0.p99 / 1000) us" } ?? "-"
        }
        print("strategy \(strategy): \(figures.totalOperations) operations, \(figures.failedOperations) failed; "
            + "migrations \(windows.map { ($0.end - $0.start) / 1_000_000 }) ms; before \(us(figures.latencyBefore)); "
            + "during \(us(figures.latencyDuring)); after \(us(figures.latencyAfter)); longest gap during the "
            + "migrations: " + figures.kinds.map { "\($0.kind) \(ms($0.longestGapInMigration))" }.joined(separator: ", "))
        let shimLines = ((try? String(contentsOfFile: countersFile, encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { $0.contains("Fulva: client shim:") }
        shimLines.forEach { print($0) }
        #expect(operations.count > 2000)
        #expect(windows.contains { w in operations.contains { w.overlaps($0.invokedAt, $0.completedAt) } },
                "operations ran during the migrations")
        if strategy != .source {
            #expect(figures.failedOperations == 0, "failed: \(operations.filter(\.failed).prefix(3))")
        }
        if strategy == .rocksteady {
            #expect(shimLines.allSatisfy { $0.contains("(0 dual reads)") }, "rocksteady reads one server: \(shimLines)")
        }

        #expect(try admin.owner(table: table, keyHash: 0) == first)
        let verifier = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        operations += try Self.finalState(verifier, server: ServerID(first), table: table, keys: keys,
                                          client: clients, firstID: operations.count).reads
        let result = LinearizabilityChecker.check(History(operations: operations, initialValues: initial))
        #expect(result.isLinearizable, "\(strategy): \(result.violations.prefix(2))")
        if strategy != .source {
            let pulls = try Self.priorityPulls(state)
            print("priority pulls per migration: \(pulls)")
            #expect(pulls.count == 2 && pulls.values.allSatisfy { $0 > 0 }, "keys not yet moved were fetched")
        }
    }
}
