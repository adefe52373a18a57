import ArgumentParser
import Foundation
import FulvaBench
import FulvaCluster
import FulvaCore
import FulvaRAMCloud
import FulvaZooKeeper

#if canImport(Glibc)
import Glibc
#endif

/// rc-migrate bench: one cluster, one workload; a baseline without
/// migration and a migration under each strategy, side by side.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark live migration: a baseline and each strategy under the same load, side by side.",
        discussion: """
            Starts its own local cluster (ZooKeeper, a coordinator, two masters) in --dir,
            loads a table, measures the raw transfer rate between the two masters (the
            ceiling for any migration), then for each strategy runs the load on fresh
            clients (fulva-bench-client, an ordinary RAMCloud client with the Fulva
            shim), migrates --migrating-share of the table's key-hash range after
            --migrate-after seconds with no throttle, keeps the load on for --tail seconds
            and stops. The baseline runs the same load without migrating, for as long as
            the longest migration took. Each run migrates the range back to where the
            previous one took it from.

            Output: the table on stdout, the report as JSON (--output), a plot of
            throughput and p99 latency over time (--plot, matplotlib), and progress on
            stderr (--json: JSON lines).

            Examples:
              rc-migrate bench
              rc-migrate bench --transport udp --read-ratio 0.5 --distribution uniform
              rc-migrate bench --records 200000 --strategies fulva,source --plot fulva.png
            """)

    @Option(help: "Cluster directory (the benchmark starts and stops its own cluster there).")
    var dir = ".fulva-bench"
    @Option(help: "Patched RAMCloud build (default: $FULVA_RAMCLOUD_HOME or ~/.cache/fulva/ramcloud).")
    var ramcloudHome: String?
    @Option(help: "Transport: auto, dpdk or udp.") var transport = "auto"
    @Option(help: "Records in the table.") var records = 1_000_000
    @Option(help: "Value size in bytes.") var valueBytes = 100
    @Option(help: "Share of operations that are reads, in [0, 1].") var readRatio = 0.95
    @Option(help: "Key distribution: zipf or uniform.") var distribution = "zipf"
    @Option(help: "Zipf exponent, in (0, 1).") var zipf = 0.99
    @Option(help: "Client processes.") var clients = 2
    @Option(help: "Operations each client keeps in flight (closed loop).") var outstanding = 1
    @Option(help: "Seconds of load before the migration starts.") var migrateAfter = 5.0
    @Option(help: "Seconds of load after the migration ends.") var tail = 3.0
    @Option(help: "Share of the key-hash range that migrates, in (0, 1].") var migratingShare = 0.99
    @Option(help: "Runs after the baseline, in order: fulva, rocksteady, source.") var strategies = "fulva,rocksteady,source"
    @Option(help: "Partitions of the source's hash table pulled in parallel (fulva and rocksteady).") var partitions = 8
    @Option(help: "Memory per master in MB (default: enough for the table twice over).") var memory: Int?
    @Option(help: "A migration that has not ended after this many seconds fails the benchmark.") var timeout = 600.0
    @Option(help: "The report as JSON.") var output = "bench.json"
    @Option(help: "The plot (.svg or .png); \"none\" for no plot.") var plot = "bench.svg"
    @Flag(help: "Progress as JSON lines on stderr.") var json = false

    var strategyList: [Strategy] {
        get throws {
            try strategies.split(separator: ",").map {
                guard let s = Strategy(rawValue: String($0)) else {
                    throw ValidationError("unknown strategy '\($0)' (fulva, rocksteady or source)")
                }
                return s
            }
        }
    }

    func validate() throws {
        guard records >= 1000 && records <= 100_000_000 else { throw ValidationError("--records must be in 1000...100000000") }
        guard (1...1_000_000).contains(valueBytes) else { throw ValidationError("--value-bytes must be in 1...1000000") }
        guard (0...1).contains(readRatio) else { throw ValidationError("--read-ratio must be in [0, 1]") }
        guard ["zipf", "uniform"].contains(distribution) else { throw ValidationError("--distribution is zipf or uniform") }
        guard zipf > 0 && zipf < 1 else { throw ValidationError("--zipf must be in (0, 1)") }
        guard (1...16).contains(clients) else { throw ValidationError("--clients must be in 1...16") }
        guard (1...64).contains(outstanding) else { throw ValidationError("--outstanding must be in 1...64") }
        guard migrateAfter >= 0.5 && tail >= 0.5 else { throw ValidationError("--migrate-after and --tail must be at least 0.5 s") }
        guard migratingShare > 0 && migratingShare <= 1 else { throw ValidationError("--migrating-share must be in (0, 1]") }
        guard (1...MigrationRequest.maxPartitions).contains(partitions) else {
            throw ValidationError("--partitions must be in 1...\(MigrationRequest.maxPartitions)")
        }
        guard ["auto", "dpdk", "udp"].contains(transport) else { throw ValidationError("--transport is auto, dpdk or udp") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let memory, memory < 64 { throw ValidationError("--memory must be at least 64 MB") }
        let chosen = try strategyList
        guard !chosen.isEmpty, Set(chosen).count == chosen.count else {
            throw ValidationError("--strategies names each of fulva, rocksteady, source at most once, and at least one")
        }
        guard plot == "none" || plot.hasSuffix(".svg") || plot.hasSuffix(".png") else {
            throw ValidationError("--plot must end in .svg or .png (or be \"none\")")
        }
    }

    /// Master memory: room for the table several times over, objects
    /// costing about 60 bytes beyond their value. Each run moves the table
    /// to the other master, whose log still holds the copy it gave away
    /// until its cleaner frees it, and RAMCloud's own migration replays
    /// whole 8 MB segments on top: with 3× the table a destination ran
    /// out of log space in the source-driven run and exited.
    var masterMemoryMB: Int { memory ?? max(1024, records * (valueBytes + 60) * 8 / 1_000_000) }

    var home: RAMCloudHome { ramcloudHome.map { RAMCloudHome(path: $0) } ?? RAMCloudHome() }

    func run() throws {
        let home = home
        if let missing = home.missing { throw fail(missing) }
        let client = home.app("fulva-bench-client")
        guard FileManager.default.isExecutableFile(atPath: client) else {
            throw fail("no \(client): this RAMCloud build predates the benchmark; run scripts/build-ramcloud")
        }
        guard home.plugin != nil else { throw fail("no Fulva plugin at \(RAMCloudHome.pluginPath); run scripts/build-plugin") }
        let launcher = ClusterLauncher(directory: dir, home: home)
        if ProcessInfo.processInfo.environment[Self.insideVariable] == "1" {
            // Ends with the command that started it (which stops the cluster);
            // its clients end with it (PR_SET_PDEATHSIG).
            let parent = getppid()
            Thread.detachNewThread {
                while getppid() == parent { sleep(1) }
                Glibc.exit(1)
            }
            try BenchDriver(command: self, launcher: launcher, clientProgram: client).run()
            return
        }
        // On the host: the cluster, then the benchmark itself as a client
        // of it (over dpdk in a namespace of its own), then the cluster down.
        let chosen: ClusterTransport
        if transport == "auto" {
            let (automatic, reason) = ClusterTransport.automatic(home: home)
            chosen = automatic == .tcp ? .udp : automatic
            progress("transport \(reason)")
        } else {
            chosen = ClusterTransport(rawValue: transport)!
        }
        _ = try? launcher.down()
        var spec = ClusterSpec()
        spec.masters = 2
        spec.masterMemoryMB = masterMemoryMB
        spec.transport = chosen
        spec.basePort = 12_446
        spec.zooKeeperPort = 12_381
        spec.idleSleep = true
        // A master replaying a large migration while serving the load on a
        // small host goes silent for seconds: not a crash.
        spec.deadServerTimeoutMillis = 15_000
        spec.rpcTimeoutMillis = 5000
        let status: Int32
        do {
            defer { _ = try? launcher.down() }
            _ = try launcher.up(spec) { progress($0) }
            // Namespaces are made on the host; the driver only enters them.
            for name in ["bench"] + (1...clients).map({ "bench-client\($0)" }) { _ = try launcher.clientPlacement(name) }
            let (prefix, environment) = try launcher.clientPlacement("bench")
            let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            let driver = Process()
            let argv = prefix + [me] + CommandLine.arguments.dropFirst()
            driver.executableURL = URL(fileURLWithPath: argv[0])
            driver.arguments = Array(argv.dropFirst())
            driver.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
                .merging([Self.insideVariable: "1"]) { _, new in new }
            // Ctrl-C or a kill stops the driver; the cluster is then stopped here.
            let signals = [SIGINT, SIGTERM].map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { if driver.isRunning { kill(driver.processIdentifier, SIGTERM) } }
                source.resume()
                return source
            }
            defer { signals.forEach { $0.cancel() } }
            try driver.run()
            driver.waitUntilExit()
            status = driver.terminationReason == .uncaughtSignal ? 128 + driver.terminationStatus
                                                                 : driver.terminationStatus
        } catch let error as ClusterError {
            throw fail(error.description)
        }
        if status > 128 { FileHandle.standardError.write(Data("rc-migrate bench: interrupted; the cluster is stopped\n".utf8)) }
        if status != 0 { throw ExitCode(status) }
    }

    static let insideVariable = "FULVA_BENCH_DRIVER"

    func progress(_ message: String, fields: [String: String] = [:]) {
        if json {
            var all = fields
            all["message"] = "\"" + message.replacingOccurrences(of: "\"", with: "\\\"") + "\""
            let line = "{" + all.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}\n"
            FileHandle.standardError.write(Data(line.utf8))
        } else {
            FileHandle.standardError.write(Data("rc-migrate bench: \(message)\n".utf8))
        }
    }
}

func monotonicNanos() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// The benchmark proper, as a client of the cluster the command started.
struct BenchDriver {
    let command: Bench
    let launcher: ClusterLauncher
    let clientProgram: String
    let table = "bench"

    /// A running fulva-bench-client.
    struct ClientProcess {
        let process: Process
        let stdout: String
        let stderr: String
    }

    func run() throws {
        guard let state = try launcher.load() else { throw fail("no cluster in \(command.dir)") }
        let library = try RAMCloudLibrary(path: command.home.library)
        RAMCloudInProcess.madeClient()
        let admin = try RAMCloudClient(library: library, coordinator: state.externalStorage)
        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage, timeoutMillis: 5000))
        let masters = try admin.serverCounters().map(\.serverID).sorted()
        guard masters.count >= 2 else { throw fail("the cluster has \(masters.count) master(s); the benchmark needs 2") }
        let strategies = try command.strategyList

        if (try? admin.tableID(table)) != nil { try admin.dropTable(table) }
        let tableID = try admin.createTable(table)
        let lastMigrating: UInt64 = command.migratingShare >= 1 ? .max
            : UInt64(Double(UInt64.max) * command.migratingShare) - 1
        if lastMigrating < .max { try admin.splitTablet(table: table, splitKeyHash: lastMigrating + 1) }
        var owner = try admin.owner(table: tableID, keyHash: 0)
        var other = masters.first { $0 != owner }!

        // Load: each client writes a slice of the records.
        command.progress("loading \(command.records) records of \(command.valueBytes) B")
        let loadStarted = monotonicNanos()
        let slice = (command.records + command.clients - 1) / command.clients
        let loaders = try (0..<command.clients).map { c in
            try launchClient(c, ["load", "--table", table, "--records", String(command.records),
                                 "--first", String(c * slice), "--end", String(min(command.records, (c + 1) * slice)),
                                 "--value-bytes", String(command.valueBytes)], label: "load", state: state)
        }
        for loader in loaders { _ = try finish(loader, timeout: 1800) }
        command.progress(String(format: "loaded in %.1f s", Double(monotonicNanos() - loadStarted) / 1e9))

        // The ceiling: as much as the migration moves, in pull-sized replies.
        let datasetBytes = UInt64(Double(command.records) * command.migratingShare) * UInt64(command.valueBytes + 30)
        let probeBytes = min(max(datasetBytes, 16 << 20), 512 << 20)
        let (probed, probeNanos) = try admin.transferProbe(from: ServerID(owner), to: ServerID(other), bytes: probeBytes,
                                                           chunkBytes: 256 * 1024, outstanding: 16)
        let ceiling = TransferCeiling(source: owner, destination: other, bytes: probed,
                                      seconds: Double(probeNanos) / 1e9, chunkBytes: 256 * 1024, outstanding: 16)
        command.progress(String(format: "bulk-transfer ceiling %llu → %llu: %.1f MB/s", owner, other,
                                ceiling.megabytesPerSecond))

        var runs: [BenchRun] = []
        var tabletBytes: UInt64?
        for strategy in strategies {
            // After a failed migration the cluster may be short of a master.
            guard !runs.contains(where: { $0.migration?.error != nil }) else {
                command.progress("\(strategy): skipped after a failed migration")
                continue
            }
            let run = try runOnce(name: strategy.rawValue, state: state, admin: admin, store: store, tableID: tableID,
                                  lastMigrating: lastMigrating, strategy: strategy, source: owner, destination: other,
                                  baselineSeconds: nil, tabletBytes: tabletBytes, ceiling: ceiling)
            if strategy != .source && run.migration?.error == nil { tabletBytes = run.migration?.bytes }
            runs.append(run)
            if run.migration?.error == nil { swap(&owner, &other) }
        }
        // The baseline last: as long as the longest migration.
        let longest = runs.compactMap { $0.migration?.error == nil ? $0.migration?.seconds : nil }.max() ?? 5
        runs.insert(try runOnce(name: "baseline", state: state, admin: admin, store: store, tableID: tableID,
                                lastMigrating: lastMigrating, strategy: nil, source: owner, destination: other,
                                baselineSeconds: max(longest, 1), tabletBytes: nil, ceiling: ceiling), at: 0)
        // Source-driven migration reports no bytes: the tablet's size as
        // another strategy's record measured it.
        for index in runs.indices where runs[index].name == Strategy.source.rawValue {
            if let tabletBytes, let m = runs[index].migration, m.error == nil {
                runs[index].migration = MigrationFigures(id: nil, source: m.source, destination: m.destination,
                                                         seconds: m.seconds, bytes: tabletBytes, objects: nil,
                                                         ceiling: ceiling, priorityPulls: nil)
            }
        }

        let configuration = BenchConfiguration(
            transport: state.spec.transport.rawValue, records: command.records, valueBytes: command.valueBytes,
            readRatio: command.readRatio, distribution: command.distribution, zipfTheta: command.zipf,
            clients: command.clients, outstanding: command.outstanding, migrateAfterSeconds: command.migrateAfter,
            tailSeconds: command.tail, migratingShare: command.migratingShare, firstKeyHash: 0,
            lastKeyHash: lastMigrating, partitions: command.partitions, masterMemoryMB: state.spec.masterMemoryMB,
            hostCores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let report = BenchReport(configuration: configuration, ceiling: ceiling, runs: runs)
        try report.json().write(to: URL(fileURLWithPath: command.output))
        print(report.table)
        print("report: \(command.output)")
        if command.plot != "none" { try drawPlot() }
        let failed = runs.filter { $0.migration?.error != nil }
        if !failed.isEmpty {
            throw fail("migration failed: " + failed.map { "\($0.name): \($0.migration!.error!)" }.joined(separator: "; "))
        }
    }

    /// One run: fresh clients, a migration (or none) after the warm-up.
    func runOnce(name: String, state: ClusterState, admin: RAMCloudClient, store: MigrationRecordStore,
                 tableID: UInt64, lastMigrating: UInt64, strategy: Strategy?, source: UInt64, destination: UInt64,
                 baselineSeconds: Double?, tabletBytes: UInt64?, ceiling: TransferCeiling) throws -> BenchRun {
        let stopFile = launcher.directory + "/bench-\(name)-stop"
        unlink(stopFile)
        let timeoutMillis = 2000
        let loadStart = monotonicNanos()
        let clients = try (0..<command.clients).map { c in
            try launchClient(c, ["run", "--table", table, "--records", String(command.records),
                                 "--value-bytes", String(command.valueBytes), "--read-ratio", String(command.readRatio),
                                 "--distribution", command.distribution, "--zipf", String(command.zipf),
                                 "--outstanding", String(command.outstanding),
                                 "--migrating", "0:" + String(lastMigrating, radix: 16),
                                 "--stop-file", stopFile, "--seconds", String(Int(command.timeout) + 600),
                                 "--timeout-ms", String(timeoutMillis), "--seed", String(c + 1),
                                 "--output", operationsFile(name, c)],
                             label: name, state: state)
        }
        var stopped = false
        defer {
            if !stopped {
                _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
                for c in clients where c.process.isRunning { kill(c.process.processIdentifier, SIGKILL) }
            }
        }
        command.progress("\(name): load running; " + (strategy.map { "\($0) migration of [0, 0x\(String(lastMigrating, radix: 16))] "
            + "from \(source) to \(destination) in \(command.migrateAfter) s" } ?? "no migration"))
        usleep(UInt32(command.migrateAfter * 1e6))
        for c in clients where !c.process.isRunning {
            throw fail("a client exited early: \((try? String(contentsOfFile: c.stderr, encoding: .utf8)) ?? "")")
        }

        let windowStart = monotonicNanos()
        var migration: MigrationFigures?
        if let strategy {
            do {
                migration = try migrate(strategy, admin: admin, store: store, state: state, tableID: tableID,
                                        lastMigrating: lastMigrating, source: source, destination: destination,
                                        ceiling: ceiling, tabletBytes: tabletBytes, name: name)
            } catch {
                // Measured all the same: what the clients saw of a failed migration.
                var failed = MigrationFigures(id: nil, source: source, destination: destination,
                                              seconds: Double(monotonicNanos() - windowStart) / 1e9, bytes: 0,
                                              objects: nil, ceiling: nil, priorityPulls: nil)
                failed.error = "\(error)"
                migration = failed
                command.progress("\(name): migration failed: \(error)")
            }
        } else {
            usleep(UInt32((baselineSeconds ?? 5) * 1e6))
        }
        let windowEnd = monotonicNanos()
        if let migration, migration.error == nil {
            command.progress(String(format: "%@: migration done in %.2f s, %.1f MB/s", name, migration.seconds,
                                    migration.megabytesPerSecond))
        }
        usleep(UInt32(command.tail * 1e6))
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        var totals = ClientTotals.zero
        var operations: [BenchOperation] = []
        for (c, client) in clients.enumerated() {
            let line = try finish(client, timeout: 60)
            totals = totals + (try JSONDecoder().decode(ClientTotals.self, from: Data(line.utf8)))
            let data = try Data(contentsOf: URL(fileURLWithPath: operationsFile(name, c)))
            operations += try BenchOperation.decode(data)
            unlink(operationsFile(name, c))
        }
        stopped = true
        let figures = BenchFigures.run(operations, loadStart: loadStart,
                                       window: TimeWindow(start: windowStart, end: windowEnd))
        command.progress("\(name): \(figures.operations) operations, \(figures.failed) failed")
        return BenchRun(name: name, figures: figures, migration: migration, clients: totals)
    }

    func migrate(_ strategy: Strategy, admin: RAMCloudClient, store: MigrationRecordStore, state: ClusterState,
                 tableID: UInt64, lastMigrating: UInt64, source: UInt64, destination: UInt64,
                 ceiling: TransferCeiling, tabletBytes: UInt64?, name: String) throws -> MigrationFigures {
        let started = monotonicNanos()
        if strategy == .source {
            try admin.migrateTablet(tableID: tableID, firstKeyHash: 0, lastKeyHash: lastMigrating, newOwner: destination)
            let seconds = Double(monotonicNanos() - started) / 1e9
            return MigrationFigures(id: nil, source: source, destination: destination, seconds: seconds,
                                    bytes: tabletBytes ?? 0, objects: nil, ceiling: ceiling, priorityPulls: nil)
        }
        let tablet = Tablet(tableID: tableID, range: try KeyHashRange(start: 0, end: lastMigrating))
        var request = MigrationRequest(id: MigrationID(0), tablet: tablet, source: ServerID(source),
                                       destination: ServerID(destination), strategy: strategy,
                                       partitions: command.partitions)
        request.id = try store.create(request, at: Int64(Date().timeIntervalSince1970 * 1000)).id
        try admin.startMigration(request)
        let deadline = started + UInt64(command.timeout * 1e9)
        var lastShown = 0.0
        while true {
            let status = try admin.migrationStatus(destination: ServerID(destination), id: request.id)
            if status.phase.isTerminal {
                guard status.phase == .done else {
                    throw BenchError("migration \(request.id) \(status.phase): \(status.lastError ?? "")")
                }
                let seconds = Double(monotonicNanos() - started) / 1e9
                return MigrationFigures(id: request.id.rawValue, source: source, destination: destination,
                                        seconds: seconds, bytes: status.bytesMoved, objects: status.objectsMoved,
                                        ceiling: ceiling, priorityPulls: priorityPulls(state, id: request.id))
            }
            if monotonicNanos() > deadline {
                throw BenchError("migration \(request.id) still \(status.phase) after \(command.timeout) s")
            }
            if status.progress - lastShown >= 0.25 {
                lastShown = status.progress
                command.progress(String(format: "%@: %.0f%% moved", name, status.progress * 100),
                                 fields: ["progress": String(status.progress)])
            }
            usleep(10_000)
        }
    }

    /// The destination's count of keys fetched ahead of their batch (its
    /// log line "Fulva: migration M finished here: N priority pulls").
    func priorityPulls(_ state: ClusterState, id: MigrationID) -> Int? {
        for process in state.processes where process.name.hasPrefix("master") {
            guard let log = try? String(contentsOfFile: process.log, encoding: .utf8) else { continue }
            for line in log.split(separator: "\n") where line.contains("migration \(id.rawValue) finished here:") {
                if let count = line.split(separator: ":").last?.split(separator: " ").first.flatMap({ Int($0) }) {
                    return count
                }
            }
        }
        return nil
    }

    func operationsFile(_ run: String, _ client: Int) -> String {
        launcher.directory + "/bench-\(run)-client\(client + 1).ops"
    }

    func launchClient(_ index: Int, _ arguments: [String], label: String, state: ClusterState) throws -> ClientProcess {
        let (prefix, environment) = try launcher.clientPlacement("bench-client\(index + 1)")
        let process = Process()
        let argv = prefix + [clientProgram] + arguments + ["--coordinator", state.externalStorage]
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            .merging(["FULVA_PLUGIN": RAMCloudHome.pluginPath]) { _, new in new }
        let stdout = launcher.directory + "/bench-\(label)-client\(index + 1).out"
        let stderr = launcher.directory + "/bench-\(label)-client\(index + 1).err"
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: stdout)
        process.standardError = FileHandle(forWritingAtPath: stderr)
        try process.run()
        return ClientProcess(process: process, stdout: stdout, stderr: stderr)
    }

    /// Waits for a client (killing it after `timeout` seconds) and returns
    /// the last line it printed.
    func finish(_ client: ClientProcess, timeout: Double) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while client.process.isRunning && Date() < deadline { usleep(50_000) }
        if client.process.isRunning {
            kill(client.process.processIdentifier, SIGKILL)
            client.process.waitUntilExit()
            throw fail("a benchmark client did not stop within \(Int(timeout)) s")
        }
        let output = (try? String(contentsOfFile: client.stdout, encoding: .utf8)) ?? ""
        guard client.process.terminationStatus == 0,
              let line = output.split(separator: "\n").last else {
            let errors = (try? String(contentsOfFile: client.stderr, encoding: .utf8)) ?? ""
            throw fail("a benchmark client failed (status \(client.process.terminationStatus)): "
                + errors.split(separator: "\n").filter { !$0.contains("ZOO_") }.suffix(3).joined(separator: " | "))
        }
        return String(line)
    }

    /// The plot, drawn by matplotlib (scripts/bench-plot) from the report.
    func drawPlot() throws {
        guard let script = Self.plotScript() else {
            command.progress("no plot: scripts/bench-plot not found next to rc-migrate or in $FULVA_BENCH_PLOT")
            return
        }
        let process = Process()
        // Debian's interpreter, which python3-matplotlib serves, before any other.
        let debian = "/usr/bin/python3"
        let python = FileManager.default.isExecutableFile(atPath: debian) ? [debian] : ["/usr/bin/env", "python3"]
        process.executableURL = URL(fileURLWithPath: python[0])
        process.arguments = Array(python.dropFirst()) + [script, command.output, command.plot]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw fail("drawing \(command.plot) failed (scripts/bench-plot exited \(process.terminationStatus); "
                + "it needs python3-matplotlib)")
        }
        print("plot: \(command.plot)")
    }

    /// scripts/bench-plot of the source tree rc-migrate was built in, or
    /// $FULVA_BENCH_PLOT.
    static func plotScript() -> String? {
        if let given = ProcessInfo.processInfo.environment["FULVA_BENCH_PLOT"] { return given }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = directory.appendingPathComponent("scripts/bench-plot").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}
