import Foundation
import FulvaCheck
import FulvaClient
import FulvaCluster
import FulvaCore
import FulvaRAMCloud
import FulvaZooKeeper
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FulvaMigrationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// An unchanged RAMCloud client program from Tests/Clients: a C file
    /// compiled against CRamCloud.h only, or a C++ file against RamCloud.h
    /// and its headers, linked with the patched libramcloud.
    static func buildClient(_ source: String) throws -> String {
        let name = (source as NSString).deletingPathExtension
        let output = NSTemporaryDirectory() + "fulva-\(name)-\(getpid())"
        let lib = Build.home.path + "/lib"
        let compiler = source.hasSuffix(".c") ? ["/usr/bin/cc", "-std=c11", "-D_GNU_SOURCE"]
                                              : ["/usr/bin/g++", "-std=c++11"]
        let built = try HostCommand.execute(
            compiler + ["-O2", "-I", Build.home.path + "/include/ramcloud",
                        repository.appendingPathComponent("Tests/Clients/" + source).path,
                        "-L", lib, "-lramcloud", "-Wl,-rpath," + lib, "-o", output], timeout: 180)
        try #require(built.status == 0, "\(compiler[0]) \(source): \(built.errorOutput)")
        return output
    }

    /// A new table of `keys` objects (key k<i>, value i), the state the
    /// checker starts from, its owner and another master.
    static func checkedTable(_ admin: RAMCloudClient, name: String, keys: Int) throws
        -> (table: UInt64, initial: [String: RecordedInitialObject], owner: UInt64, other: UInt64) {
        let table = try admin.createTable(name)
        var initial: [String: RecordedInitialObject] = [:]
        for i in 0..<keys {
            let version = try admin.write(table: table, key: protocolKey(i), value: bytes(Int64(i)))
            initial["k\(i)"] = RecordedInitialObject(value: Int64(i), version: version)
        }
        let owner = try admin.owner(table: table, keyHash: 0)
        let other = try #require(try masters(admin).first { $0 != owner })
        return (table, initial, owner, other)
    }

    /// `count` history_client programs (clients 1...count) on `table`,
    /// through the shim, pausing 2 ms between operations, until `stopFile`.
    static func launchHistoryClients(_ launcher: ClusterLauncher, _ state: ClusterState, program: String, table: String,
                                     keys: Int, count: Int, stopFile: String, countersFile: String,
                                     label: String) throws -> [ClientProgram] {
        try (0..<count).map { c in
            try ClientProgram.launch(launcher, name: "client\(c + 1)", program: program,
                                     [state.externalStorage, "main", table, String(keys), String(hotKeys), String(c),
                                      stopFile, "40000", "2000"],
                                     label: label, environment: ["FULVA_PLUGIN": RAMCloudHome.pluginPath,
                                                                 "FULVA_SHIM_COUNTERS": countersFile,
                                                                 "RAMCLOUD_IDLE_SLEEP": "1"])
        }
    }

    /// One line of history_client's (or multi_client's) output as the checker records it.
    static func historyLine(_ line: Substring, id: Int, client: Int) -> RecordedOperation? {
        let f = line.split(separator: " ").map(String.init)
        guard f.count == 9, let input = Int64(f[2]), let given = UInt64(f[3]), let value = Int64(f[5]),
              let version = UInt64(f[6]), let start = Int64(f[7]), let end = Int64(f[8]) else { return nil }
        let kind: OperationKind
        let recordedInput: RecordedInput
        switch f[0] {
        case "read": (kind, recordedInput) = (.read, .read)
        case "mread": (kind, recordedInput) = (.multiRead, .read)
        case "mwrite": (kind, recordedInput) = (.multiWrite, .write(value: input, rejectRules: nil))
        case "mremove": (kind, recordedInput) = (.remove, .remove(rejectRules: nil))
        case "write": (kind, recordedInput) = (.write, .write(value: input, rejectRules: nil))
        case "cwrite":
            kind = .conditionalWrite
            recordedInput = .write(value: input, rejectRules: RecordedRejectRules(givenVersion: given, doesntExist: true,
                                                                                versionNeGiven: true))
        case "remove": (kind, recordedInput) = (.remove, .remove(rejectRules: nil))
        default: (kind, recordedInput) = (.increment, .increment(delta: input, rejectRules: nil))
        }
        var output: RecordedOutput?
        switch f[4] {
        case "found": output = .found(value: value, version: version)
        case "absent": output = .absent
        case "written": output = .written(version: version)
        case "removed": output = .removed(version: version == 0 ? nil : version)
        case "incremented": output = .incremented(value: value, version: version)
        case "rejected": output = .rejected(value == Int64(RAMCloudError.wrongVersion) ? .wrongVersion : .objectDoesntExist)
        default: output = nil
        }
        // No answer within 1 s counts as failed, whatever came later.
        if end - start > 1_000_000_000 { output = nil }
        return RecordedOperation(id: id, client: client, kind: kind, key: f[1], input: recordedInput, output: output,
                                 invokedAt: start, completedAt: end)
    }

    /// Runs a migration of the whole table through the plugin (Fulva by
    /// default) and waits for it to end.
    static func migrate(_ admin: RAMCloudClient, _ store: MigrationRecordStore, table: UInt64,
                        from source: UInt64, to destination: UInt64, strategy: Strategy = .fulva,
                        partitions: Int = 8) throws -> MigrationRecord {
        var request = MigrationRequest(id: MigrationID(0), tablet: Tablet(tableID: table), source: ServerID(source),
                                       destination: ServerID(destination), strategy: strategy, partitions: partitions)
        request.id = try store.create(request, at: Int64(Date().timeIntervalSince1970 * 1000)).id
        try admin.startMigration(request)
        var record = try admin.migrationStatus(destination: ServerID(destination), id: request.id)
        let deadline = Date().addingTimeInterval(120)
        while !record.phase.isTerminal && Date() < deadline {
            usleep(50_000)
            record = try admin.migrationStatus(destination: ServerID(destination), id: request.id)
        }
        return record
    }

    /// Unchanged C clients (CRamCloud.h: rc_read, rc_multiRead, rc_write with
    /// and without reject rules, rc_remove, rc_incrementInt64), a C++ client
    /// (RamCloud.h: multiWrite, multiRemove, multiIncrement, read) and a
    /// Python 3 client (RAMCloud's bindings) run through the client shim in
    /// libramcloud while the table migrates S→D and back, on keys
    /// none of which has moved when each migration starts. The history is
    /// linearizable, nothing failed, and the shim's counters show dual reads
    /// and the destination's priority pulls.
    @Test func unchangedCClientsFollowMigrationsThroughTheShim() throws {
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let cluster = try TestCluster(Self.spec(), seconds: 540, what: "unchangedCClientsFollowMigrationsThroughTheShim")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        let program = try Self.buildClient("history_client.c")
        let multiProgram = try Self.buildClient("multi_client.cc")
        defer {
            unlink(program)
            unlink(multiProgram)
        }
        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let keys = 50_000
        let (table, initial, first, second) = try Self.checkedTable(admin, name: "shim", keys: keys)

        let stopFile = launcher.directory + "/shim-clients-stop"
        let countersFile = launcher.directory + "/shim-counters.log"
        let multiCountersFile = launcher.directory + "/shim-counters-multi.log"
        unlink(stopFile)
        unlink(countersFile)
        unlink(multiCountersFile)
        let clients = 3
        let programs = try Self.launchHistoryClients(launcher, state, program: program, table: "shim", keys: keys,
                                                     count: clients, stopFile: stopFile, countersFile: countersFile,
                                                     label: "history")
        // And a Python 3 client through RAMCloud's bindings (patched for Python 3).
        let python = try ClientProgram.launch(
            launcher, name: "client\(clients + 1)", program: "/usr/bin/python3",
            [Self.repository.appendingPathComponent("Tests/Clients/python_client.py").path, state.externalStorage,
             "main", "shim", "2000", stopFile, "40000", "2000"],
            label: "python", environment: ["FULVA_PLUGIN": RAMCloudHome.pluginPath, "FULVA_SHIM_COUNTERS": countersFile,
                                           "RAMCLOUD_IDLE_SLEEP": "1", "PYTHONPATH": Build.home.path + "/lib/python",
                                           "RAMCLOUD_LIBRARY": Build.home.library])
        // And a C++ client running multiWrite, multiRemove and multiIncrement.
        let multi = try ClientProgram.launch(
            launcher, name: "client\(clients + 2)", program: multiProgram,
            [state.externalStorage, "main", "shim", String(Self.hotKeys), "10", stopFile, "40000", "2000"],
            label: "multi", environment: ["FULVA_PLUGIN": RAMCloudHome.pluginPath,
                                          "FULVA_SHIM_COUNTERS": multiCountersFile, "RAMCLOUD_IDLE_SLEEP": "1"])
        defer {
            FileManager.default.createFile(atPath: stopFile, contents: nil)
            for p in programs + [python, multi] where p.process.isRunning { kill(p.process.processIdentifier, SIGKILL) }
        }
        let lines = { (p: ClientProgram) -> Int in
            ((try? String(contentsOfFile: p.output, encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        let warm = Date().addingTimeInterval(60)
        while programs.map(lines).reduce(0, +) < 3000 && Date() < warm { usleep(100_000) }

        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage))
        let forward = try Self.migrate(admin, store, table: table, from: first, to: second)
        #expect(forward.phase == .done, "S→D: \(forward.lastError ?? "")")
        usleep(500_000)
        let backward = try Self.migrate(admin, store, table: table, from: second, to: first)
        #expect(backward.phase == .done, "D→S: \(backward.lastError ?? "")")
        usleep(500_000)
        FileManager.default.createFile(atPath: stopFile, contents: nil)

        struct PythonResult: Decodable {
            var operations: Int
            var failed: Int
            var failures: [String]
            var counts: [String: Int]
        }
        let pythonResult = try JSONDecoder().decode(PythonResult.self, from: python.finish(timeout: 120))
        print("Python client through the shim: \(pythonResult.operations) operations \(pythonResult.counts), "
            + "\(pythonResult.failed) failed")
        #expect(pythonResult.failed == 0, "Python client failures: \(pythonResult.failures)")
        #expect(pythonResult.operations > 200 && pythonResult.counts.values.allSatisfy { $0 > 0 },
                "the Python client read, wrote, removed and incremented")

        var operations: [RecordedOperation] = []
        var shimLines: [String] = []
        var doubles: [(key: String, increments: Int, value: Double)] = []
        for (c, p) in (programs + [multi]).enumerated() {
            let data = try p.finish(timeout: 120)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                if let op = Self.historyLine(line, id: operations.count, client: c) { operations.append(op) }
                let f = line.split(separator: " ")
                if f.count == 4, f[0] == "double", let count = Int(f[2]), let value = Double(f[3]) {
                    doubles.append((String(f[1]), count, value))
                }
            }
        }
        // incrementDouble through the shim: every acknowledged increment
        // applied exactly once.
        print("incrementDouble: \(doubles.map(\.increments).reduce(0, +)) acknowledged on \(doubles.count) keys")
        #expect(doubles.count == 10 && doubles.map(\.increments).reduce(0, +) > 0, "\(doubles)")
        for d in doubles { #expect(d.value == 0.5 * Double(d.increments), "\(d.key): \(d.value) after \(d.increments) increments of 0.5") }
        let shimLinesIn = { (file: String) in
            ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { $0.contains("Fulva: client shim:") }.map(String.init)
        }
        let multiLines = shimLinesIn(multiCountersFile)
        shimLines = shimLinesIn(countersFile) + multiLines
        let failed = operations.filter(\.failed)
        let latencies = operations.map { $0.completedAt - $0.invokedAt }.sorted()
        print("C and C++ clients through the shim: \(operations.count) operations, \(failed.count) failed; latency p50 "
            + "\(latencies[latencies.count / 2] / 1000) us, p99 \(latencies[latencies.count * 99 / 100] / 1000) us, "
            + "max \(latencies.last! / 1000) us")
        shimLines.forEach { print($0) }
        #expect(operations.count > 3000)
        #expect(failed.isEmpty, "failed: \(failed.prefix(3))")
        for kind in [OperationKind.read, .multiRead, .write, .multiWrite, .conditionalWrite, .remove, .increment] {
            #expect(operations.contains { $0.kind == kind }, "the clients ran \(kind)")
        }
        #expect(operations.contains { $0.client == clients && $0.kind == .remove }, "the C++ client ran multiRemove")
        #expect(operations.contains { $0.client == clients && $0.kind == .increment }, "the C++ client ran multiIncrement")

        // Every client loaded the shim, and between them they read from both
        // servers at once.
        #expect(shimLines.count >= clients + 1, "each client's shim reported (the Python one too): \(shimLines)")
        let dualReads = shimLines.compactMap { line -> Int? in
            guard let range = line.range(of: " dual") else { return nil }
            return Int(line[..<range.lowerBound].split(separator: "(").last ?? "")
        }.reduce(0, +)
        #expect(dualReads > 0, "dual reads through the shim: \(shimLines)")
        // The C++ client's multiWrite, multiRemove and multiIncrement went
        // to the destination through the shim, not by way of refusals.
        let multiRouted = multiLines.compactMap { line -> Int? in
            guard let range = line.range(of: " requests routed") else { return nil }
            return Int(line[..<range.lowerBound].split(separator: " ").last ?? "")
        }.reduce(0, +)
        #expect(multiRouted > 0, "the C++ client's requests routed by the shim: \(multiLines)")

        // The final state, read from the owner after both migrations.
        let owner = try admin.owner(table: table, keyHash: 0)
        #expect(owner == first)
        let verifier = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        operations += try Self.finalState(verifier, server: ServerID(owner), table: table, keys: keys,
                                          client: clients + 1, firstID: operations.count).reads
        let result = LinearizabilityChecker.check(History(operations: operations, initialValues: initial))
        #expect(result.isLinearizable, "\(result.violations.prefix(2))")

        // Both destinations fetched keys ahead of their batches.
        let pulls = try Self.priorityPulls(state)
        print("priority pulls per migration: \(pulls)")
        #expect(pulls.count == 2 && pulls.values.allSatisfy { $0 > 0 }, "priority pulls in both migrations")
    }
    /// The shim adds no work to requests about tablets that do not
    /// migrate: an unchanged C client (history_client) running its mixed
    /// workload on such a table with the shim loaded makes no call into the
    /// plugin (so none into Swift) and counts nothing. The same workload
    /// with the shim off (FULVA_PLUGIN=none), in alternating rounds, gives
    /// the latency baseline printed beside it.
    @Test func stillTabletsCostTheShimNothing() throws {
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let cluster = try TestCluster(Self.spec(), seconds: 300, what: "stillTabletsCostTheShimNothing")
        defer { cluster.stop() }
        let (launcher, state) = (cluster.launcher, cluster.state)
        try Self.waitForPlugins(state)
        let program = try Self.buildClient("history_client.c")
        defer { unlink(program) }
        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let table = try admin.createTable("still")
        let keys = 2_000
        for i in 0..<keys {
            _ = try admin.write(table: table, key: Self.protocolKey(i), value: Self.bytes(Int64(i)))
        }
        let countersFile = launcher.directory + "/still-counters.log"
        unlink(countersFile)
        var latencies: [String: [Int64]] = ["shim": [], "no shim": []]
        var roundMedians: [String: [Int64]] = ["shim": [], "no shim": []]
        let rounds = 10
        for round in 0..<rounds {
            let mode = round % 2 == 0 ? "no shim" : "shim"
            let plugin = mode == "shim" ? RAMCloudHome.pluginPath : "none"
            let client = try ClientProgram.launch(
                launcher, name: "client1", program: program,
                [state.externalStorage, "main", "still", String(keys), String(Self.hotKeys), String(round),
                 launcher.directory + "/no-stop-file", "4000", "0"],
                label: "still", environment: ["FULVA_PLUGIN": plugin, "FULVA_SHIM_COUNTERS": countersFile,
                                              "RAMCLOUD_IDLE_SLEEP": "1"])
            let output = String(decoding: try client.finish(timeout: 120), as: UTF8.self)
            var failed = 0
            var roundLatencies: [Int64] = []
            for (index, line) in output.split(separator: "\n").enumerated() {
                guard let op = Self.historyLine(line, id: 0, client: round) else { continue }
                if op.failed { failed += 1 }
                // The first operations open sessions: not part of the distribution.
                if index >= 100 { roundLatencies.append(op.completedAt - op.invokedAt) }
            }
            latencies[mode]! += roundLatencies
            roundMedians[mode]!.append(roundLatencies.sorted()[roundLatencies.count / 2])
            #expect(failed == 0, "round \(round) (\(mode)): \(failed) failed operations")
        }
        func summary(_ values: [Int64]) -> (p50: Double, p90: Double, p99: Double, mean: Double) {
            let sorted = values.sorted()
            let at = { (q: Double) in Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1000 }
            return (at(0.5), at(0.9), at(0.99), Double(values.reduce(0, +)) / Double(values.count) / 1000)
        }
        let (with, without) = (summary(latencies["shim"]!), summary(latencies["no shim"]!))
        let medians = { (mode: String) in roundMedians[mode]!.map { String($0 / 1000) }.joined(separator: " ") }
        print("per-round p50 (us), with the shim: \(medians("shim")); shim off: \(medians("no shim"))")
        print(String(format: "still tablet, \(rounds / 2) alternating rounds each of 4000 operations (the first 100 lines of each left out): with the shim p50 %.1f us, "
            + "p90 %.1f us, p99 %.1f us, mean %.1f us; shim off p50 %.1f us, p90 %.1f us, p99 %.1f us, "
            + "mean %.1f us; ratio p50 %.3f, p99 %.3f, mean %.3f", with.p50, with.p90, with.p99, with.mean,
            without.p50, without.p90, without.p99, without.mean, with.p50 / without.p50, with.p99 / without.p99,
            with.mean / without.mean))
        #expect(latencies.values.allSatisfy { $0.count >= rounds / 2 * 3_900 },
                "every operation answered (multiRead prints a line per key)")

        // Each connection with the shim reported, and none called into the
        // plugin or counted anything.
        let lines = ((try? String(contentsOfFile: countersFile, encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { $0.contains("Fulva: client shim:") }
        lines.forEach { print($0) }
        #expect(lines.count == rounds / 2, "one counters line per connection with the shim: \(lines)")
        #expect(lines.allSatisfy { $0.contains(": 0 reads (0 dual reads), 0 requests routed")
                                   && $0.contains(" 0 migrations learned") && $0.hasSuffix(" 0 calls into the plugin") },
                "\(lines)")
    }
}
