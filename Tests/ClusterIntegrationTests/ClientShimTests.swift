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

    /// Tests/Clients/history_client.c, compiled against CRamCloud.h only and
    /// linked with the patched libramcloud: an unchanged RAMCloud client.
    static func buildHistoryClient() throws -> String {
        let output = NSTemporaryDirectory() + "fulva-history-client-\(getpid())"
        let lib = Build.home.path + "/lib"
        let built = try HostCommand.execute(
            ["/usr/bin/cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-I", Build.home.path + "/include/ramcloud",
             repository.appendingPathComponent("Tests/Clients/history_client.c").path,
             "-L", lib, "-lramcloud", "-Wl,-rpath," + lib, "-o", output], timeout: 120)
        try #require(built.status == 0, "cc: \(built.errorOutput)")
        return output
    }

    /// Tests/Clients/multi_client.cc, compiled against RamCloud.h and linked
    /// with the patched libramcloud: an unchanged C++ client.
    static func buildMultiClient() throws -> String {
        let output = NSTemporaryDirectory() + "fulva-multi-client-\(getpid())"
        let lib = Build.home.path + "/lib"
        let built = try HostCommand.execute(
            ["/usr/bin/g++", "-std=c++11", "-O2", "-I", Build.home.path + "/include/ramcloud",
             repository.appendingPathComponent("Tests/Clients/multi_client.cc").path,
             "-L", lib, "-lramcloud", "-Wl,-rpath," + lib, "-o", output], timeout: 180)
        try #require(built.status == 0, "g++: \(built.errorOutput)")
        return output
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

    /// Runs a Fulva migration of the whole table and waits for it.
    static func migrate(_ admin: RAMCloudClient, _ store: MigrationRecordStore, table: UInt64,
                        from source: UInt64, to destination: UInt64) throws -> MigrationRecord {
        var request = MigrationRequest(id: MigrationID(0), tablet: Tablet(tableID: table), source: ServerID(source),
                                       destination: ServerID(destination), strategy: .fulva, partitions: 8)
        request.id = try store.create(request, at: Int64(Date().timeIntervalSince1970 * 1000)).id
        try admin.startMigration(request)
        var record = try admin.migrationStatus(destination: ServerID(destination), id: request.id)
        for _ in 0..<2400 where !record.phase.isTerminal {
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
        let program = try Self.buildHistoryClient()
        let multiProgram = try Self.buildMultiClient()
        defer {
            unlink(program)
            unlink(multiProgram)
        }
        let library = try RAMCloudLibrary(path: Build.home.library)
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let table = try admin.createTable("shim")
        let keys = 50_000
        var initial: [String: RecordedInitialObject] = [:]
        for i in 0..<keys {
            let version = try admin.write(table: table, key: Self.protocolKey(i), value: Self.bytes(Int64(i)))
            initial["k\(i)"] = RecordedInitialObject(value: Int64(i), version: version)
        }
        let first = try admin.owner(table: table, keyHash: 0)
        let second = try #require(try Self.masters(admin).first { $0 != first })

        let stopFile = launcher.directory + "/shim-clients-stop"
        let countersFile = launcher.directory + "/shim-counters.log"
        unlink(stopFile)
        unlink(countersFile)
        let clients = 3
        let programs = try (0..<clients).map { c in
            try ClientProgram.launch(launcher, name: "client\(c + 1)", program: program,
                                     [state.externalStorage, "main", "shim", String(keys), String(Self.hotKeys), String(c),
                                      stopFile, "40000", "2000"],
                                     label: "history", environment: ["FULVA_PLUGIN": RAMCloudHome.pluginPath,
                                                                     "FULVA_SHIM_COUNTERS": countersFile,
                                                                     "RAMCLOUD_IDLE_SLEEP": "1"])
        }
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
            label: "multi", environment: ["FULVA_PLUGIN": RAMCloudHome.pluginPath, "FULVA_SHIM_COUNTERS": countersFile,
                                          "RAMCLOUD_IDLE_SLEEP": "1"])
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
        for (c, p) in (programs + [multi]).enumerated() {
            let data = try p.finish(timeout: 120)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                if let op = Self.historyLine(line, id: operations.count, client: c) { operations.append(op) }
            }
        }
        shimLines = ((try? String(contentsOfFile: countersFile, encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { $0.contains("Fulva: client shim:") }.map(String.init)
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
}
