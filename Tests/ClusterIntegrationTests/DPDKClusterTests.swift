import Foundation
import FulvaCluster
import FulvaRAMCloud
import Testing

#if canImport(Glibc)
import Glibc
#endif

enum DPDKBuild {
    /// Why the DPDK cluster tests cannot run here, or nil.
    static let unavailable: String? = {
        if let missing = Build.home.missing { return missing }
        if !Build.home.hasDPDK { return "the RAMCloud build at \(Build.home.path) has no DPDK driver" }
        if let reason = DPDKNetwork.unavailableReason() { return reason }
        if ClientProgram.workload == nil { return "fulva-workload is not built next to the tests" }
        return nil
    }()
    static var ready: Bool {
        if let unavailable { print("DPDK cluster tests SKIPPED: \(unavailable)") }
        return unavailable == nil
    }
}

/// A client program run against a cluster the way `rc-migrate cluster exec`
/// runs it (in its own namespace over dpdk), bounded in time.
struct ClientProgram {
    static let workload: String? = tool("fulva-workload")
    static let rcMigrate: String? = tool("rc-migrate")

    /// One of the package's executables, built next to the tests.
    static func tool(_ name: String) -> String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        let build = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/release/" + name).path
        return FileManager.default.isExecutableFile(atPath: build) ? build : nil
    }

    let process: Process
    let output: String
    let log: String

    /// Starts `fulva-workload arguments...` as client `name` of the cluster.
    static func start(_ launcher: ClusterLauncher, name: String, _ arguments: [String]) throws -> ClientProgram {
        let state = try #require(try launcher.load())
        return try launch(launcher, name: name, program: workload!,
                          arguments + ["--storage", state.externalStorage], label: arguments[0])
    }

    /// Starts any client program as client `name` of the cluster (in its
    /// network namespace over dpdk), its output and log in the cluster's directory.
    static func launch(_ launcher: ClusterLauncher, name: String, program: String, _ arguments: [String],
                       label: String, environment extra: [String: String] = [:]) throws -> ClientProgram {
        let (prefix, environment) = try launcher.clientPlacement(name)
        let process = Process()
        let command = prefix + [program] + arguments
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            .merging(extra) { _, new in new }
        let output = launcher.directory + "/\(name)-\(label)-\(UInt32.random(in: 0...UInt32.max)).json"
        let log = output.replacingOccurrences(of: ".json", with: ".log")
        FileManager.default.createFile(atPath: output, contents: nil)
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: output)
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return ClientProgram(process: process, output: output, log: log)
    }

    /// Waits for the program (killing it after `timeout`) and returns its JSON output.
    func finish(timeout: Double) throws -> Data {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            Issue.record("client program overran \(Int(timeout)) s; log:\n\(tail)")
            throw ClusterError("client program timed out")
        }
        process.waitUntilExit()
        let data = FileManager.default.contents(atPath: output) ?? Data()
        if process.terminationStatus != 0 {
            Issue.record("client program exited \(process.terminationStatus): \(String(decoding: data, as: UTF8.self))\n\(tail)")
        }
        return data
    }

    var tail: String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { !$0.contains("ZOO_INFO") }.suffix(15).joined(separator: "\n")
    }

    /// Waits until the program reported `operations` done (its progress lines).
    func waitForProgress(_ operations: Int, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let last = text.split(separator: "\n").last(where: { $0.contains("progress ") }),
               let done = Int(last.split(separator: " ").last ?? ""), done >= operations {
                return true
            }
            usleep(50_000)
        }
        return false
    }

    static func run(_ launcher: ClusterLauncher, name: String, _ arguments: [String], timeout: Double) throws -> Data {
        try start(launcher, name: name, arguments).finish(timeout: timeout)
    }
}

struct WorkloadResult: Decodable {
    struct Latency: Decodable {
        var count: Int
        var p50Micros: Int
        var p90Micros: Int
        var p99Micros: Int
        var p999Micros: Int
        var maxMicros: Int
    }
    var operations: Int
    var failed: Int
    var failures: [String]
    var seconds: Double
    var operationsPerSecond: Double
    var latency: Latency
}

struct MigrationResult: Decodable {
    var source: Double
    var destination: Double
    var owner: Double
    var seconds: Double
}

/// RAMCloud over DPDK (net_af_packet in network namespaces), as the
/// launcher builds it on a host without a NIC for DPDK. Needs root.
@Suite(.serialized, .enabled(if: DPDKBuild.ready, "needs root, iproute2 and a RAMCloud build with DPDK"),
       .timeLimit(.minutes(15)))
struct DPDKClusterTests {
    static func spec(_ transport: ClusterTransport, basePort: Int) -> ClusterSpec {
        var spec = ClusterSpec()
        spec.masters = 2
        spec.masterMemoryMB = 256
        spec.transport = transport
        spec.basePort = basePort
        spec.zooKeeperPort = basePort - 65
        spec.startTimeout = 90
        return spec
    }

    static let operations = 100_000
    static let keys = 2000
    static let mix = "read=50,write=20,increment=10,remove=5,conditionalWrite=10,staleConditionalWrite=5"

    /// What the host still holds of a cluster's network: namespaces,
    /// interfaces, DPDK runtime directories, RAMCloud processes.
    static func leftovers(tag: String, pids: [Int32]) -> [String] {
        var found = DPDKNetwork.leftoverNamespaces(tag: tag).map { "namespace \($0)" }
        let links = (try? HostCommand.run("/usr/sbin/ip", "-o", "link", "show")) ?? ""
        for line in links.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2)
            if fields.count >= 2, fields[1].trimmingCharacters(in: .whitespaces).hasPrefix(tag) {
                found.append("interface \(fields[1].trimmingCharacters(in: .whitespaces))")
            }
        }
        let runtime = (try? FileManager.default.contentsOfDirectory(atPath: DPDKNetwork.runtimeRoot)) ?? []
        found += runtime.filter { $0.hasPrefix(tag + "-") }.map { "runtime directory \($0)" }
        for pid in pids {
            // A zombie (exited, not yet reaped by its parent) no longer runs.
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
               let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] != "Z" {
                found.append("process \(pid)")
            }
        }
        return found
    }

    /// A mixed workload with a source-driven migration across it, then the
    /// same with 1% of the frames dropped on the bridge: zero failed
    /// operations, every locator basic+dpdk, no TCP or UDP listener in any
    /// RAMCloud namespace, and the masters' DPDK counters above the number
    /// of operations.
    @Test func mixedLoadAndMigrationOverDPDKAlsoWithLoss() throws {
        let directory = NSTemporaryDirectory() + "fulva-dpdk-\(getpid())"
        let launcher = ClusterLauncher(directory: directory, home: Build.home)
        _ = try? launcher.down()
        let watchdog = Watchdog(seconds: 600, what: "mixedLoadAndMigrationOverDPDKAlsoWithLoss", launcher: launcher)
        var pids: [Int32] = []
        let tag = DPDKNetwork(basePort: 15_246).tag
        defer {
            withExtendedLifetime(watchdog) {}
            _ = try? launcher.down()
            #expect(Self.leftovers(tag: tag, pids: pids) == [], "teardown left nothing behind")
        }
        let state = try launcher.up(Self.spec(.dpdk, basePort: 15_246)) { print("cluster: \($0)") }
        pids = state.processes.map(\.pid)
        let network = try #require(state.network)
        #expect(state.coordinatorLocator == "basic+dpdk:")

        let fill = try ClientProgram.run(launcher, name: "client1",
                                         ["fill", "--keys", String(Self.keys), "--server-span", "2"], timeout: 120)
        #expect(!fill.isEmpty)

        // First run: no loss; second run: 1% of the frames dropped on the
        // bridge. In each, 1/256 of the key-hash space moves from its owner to
        // the other master (and back in the second run) while the load runs;
        // the table spans both masters, so each serves about half of the
        // operations.
        var countersBefore: [UInt64: ServerCounters] = [:]
        for (round, loss) in [(1, 0.0), (2, 1.0)] {
            try launcher.setPacketLoss(loss)
            let load = try ClientProgram.start(launcher, name: "client1",
                ["run", "--keys", String(Self.keys), "--operations", String(Self.operations),
                 "--mix", Self.mix, "--seed", String(round), "--progress-every", "2000"])
            #expect(load.waitForProgress(Self.operations / 4, timeout: 240), "the load progressed: \(load.tail)")
            let migration = try JSONDecoder().decode(MigrationResult.self, from: ClientProgram.run(
                launcher, name: "client2",
                ["migrate", "--first-hash", "0", "--last-hash", "0x00ffffffffffffff", "--split", "--to-other"],
                timeout: 120))
            #expect(migration.owner == migration.destination)
            #expect(load.process.isRunning, "the migration happened while the load ran")
            let result = try JSONDecoder().decode(WorkloadResult.self, from: load.finish(timeout: 400))
            print("dpdk round \(round) (loss \(loss)%): \(result.operations) operations, \(result.failed) failed, "
                + "\(Int(result.operationsPerSecond)) ops/s, p50 \(result.latency.p50Micros) us, "
                + "p99 \(result.latency.p99Micros) us, max \(result.latency.maxMicros) us; "
                + "migration \(migration.source) -> \(migration.destination) in \(migration.seconds) s")
            #expect(result.operations == Self.operations)
            #expect(result.failed == 0, "failures: \(result.failures)")

            // The masters' DPDK port counters (frames received + sent during
            // the run) each exceed the operations of the run: the traffic went
            // through DPDK.
            let counters = try JSONDecoder().decode([ServerCounters].self, from: ClientProgram.run(
                launcher, name: "client2", ["counters"], timeout: 60))
            #expect(counters.count == 2)
            for server in counters {
                let before = countersBefore[server.serverID]
                let received = server.dpdkPacketsReceived - (before?.dpdkPacketsReceived ?? 0)
                let sent = server.dpdkPacketsSent - (before?.dpdkPacketsSent ?? 0)
                print("round \(round), server \(server.serverID): DPDK frames received \(received), sent \(sent)")
                #expect(received + sent > UInt64(Self.operations), "server \(server.serverID) moved its frames through DPDK")
                #expect(received > 0 && sent > 0)
                countersBefore[server.serverID] = server
            }
            if loss > 0 {
                let dropped = try #require(try launcher.load()?.network).droppedFrames()
                print("round \(round): the bridge dropped \(dropped) frames")
                #expect(dropped > UInt64(Self.operations) / 100, "the loss rule dropped frames")
            }
        }

        // Every locator in use is basic+dpdk: what the coordinator and the
        // masters listen on, and what the coordinator enlisted.
        var locators: [String] = []
        for process in state.processes where process.name != "zookeeper" {
            let log = try String(contentsOfFile: process.log, encoding: .utf8)
            for line in log.split(separator: "\n") {
                for marker in ["Listening on ", "Enlisting server at "] {
                    if let range = line.range(of: marker) {
                        locators.append(String(line[range.upperBound...].split(separator: " ").first ?? ""))
                    }
                }
            }
        }
        #expect(locators.count == 2 + 3, "coordinator and masters listening, two masters enlisted: \(locators)")
        #expect(locators.allSatisfy { $0.hasPrefix("basic+dpdk:mac=") }, "\(locators)")

        // TCP and UDP are off for RAMCloud: in its namespaces no socket
        // listens, and the only connections are to ZooKeeper in the hub.
        for member in network.members where ["coordinator", "master1", "master2"].contains(member.name) {
            let listening = try HostCommand.run("/usr/sbin/ip", "netns", "exec", member.namespace, "ss", "-H", "-tuln")
            #expect(listening.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(member.name) listens: \(listening)")
            let udp = try HostCommand.run("/usr/sbin/ip", "netns", "exec", member.namespace, "ss", "-H", "-uan")
            #expect(udp.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(member.name) has UDP sockets: \(udp)")
            let tcp = try HostCommand.run("/usr/sbin/ip", "netns", "exec", member.namespace, "ss", "-H", "-tn")
            for line in tcp.split(separator: "\n") {
                #expect(line.contains("\(network.hubAddress):\(state.spec.zooKeeperPort)"), "\(member.name): \(line)")
            }
        }
    }

    /// The same cluster shape over udp and over dpdk, small reads from one
    /// client: latency percentiles and throughput, printed side by side.
    /// Nothing is asserted about times (they depend on the machine).
    @Test func smallReadLatencyUDPAgainstDPDK() throws {
        var results: [ClusterTransport: WorkloadResult] = [:]
        for (transport, port) in [(ClusterTransport.udp, 15_446), (.dpdk, 15_646)] {
            let directory = NSTemporaryDirectory() + "fulva-latency-\(transport)-\(getpid())"
            let launcher = ClusterLauncher(directory: directory, home: Build.home)
            _ = try? launcher.down()
            let watchdog = Watchdog(seconds: 300, what: "smallReadLatency \(transport)", launcher: launcher)
            defer {
                withExtendedLifetime(watchdog) {}
                _ = try? launcher.down()
            }
            _ = try launcher.up(Self.spec(transport, basePort: port)) { print("cluster: \($0)") }
            _ = try ClientProgram.run(launcher, name: "client1", ["fill", "--keys", "1000"], timeout: 120)
            let data = try ClientProgram.run(launcher, name: "client1",
                ["run", "--keys", "1000", "--operations", "30000", "--mix", "read=1"], timeout: 300)
            let result = try JSONDecoder().decode(WorkloadResult.self, from: data)
            #expect(result.failed == 0)
            results[transport] = result
        }
        let udp = try #require(results[.udp]), dpdk = try #require(results[.dpdk])
        func ratio(_ a: Int, _ b: Int) -> String { String(format: "%.2f", Double(a) / Double(max(b, 1))) }
        print("small reads, 1 client, 30000 reads: | transport | ops/s | p50 us | p90 us | p99 us | p99.9 us |")
        for (name, r) in [("udp", udp), ("dpdk", dpdk)] {
            print("| \(name) | \(Int(r.operationsPerSecond)) | \(r.latency.p50Micros) | \(r.latency.p90Micros) | "
                + "\(r.latency.p99Micros) | \(r.latency.p999Micros) |")
        }
        print("| dpdk/udp | \(String(format: "%.2f", dpdk.operationsPerSecond / udp.operationsPerSecond)) | "
            + "\(ratio(dpdk.latency.p50Micros, udp.latency.p50Micros)) | \(ratio(dpdk.latency.p90Micros, udp.latency.p90Micros)) | "
            + "\(ratio(dpdk.latency.p99Micros, udp.latency.p99Micros)) | \(ratio(dpdk.latency.p999Micros, udp.latency.p999Micros)) |")
    }

    /// A test that fails midway (here: an error thrown while a client runs
    /// in its namespace) still leaves nothing behind, and a network left by
    /// a killed run is removed by the next `up` on the same ports.
    @Test func teardownLeavesNothingBehindAlsoAfterAFailure() throws {
        let directory = NSTemporaryDirectory() + "fulva-teardown-\(getpid())"
        let launcher = ClusterLauncher(directory: directory, home: Build.home)
        _ = try? launcher.down()
        let watchdog = Watchdog(seconds: 300, what: "teardownLeavesNothingBehind", launcher: launcher)
        defer { withExtendedLifetime(watchdog) {} }
        let spec = Self.spec(.dpdk, basePort: 15_846)
        let tag = DPDKNetwork(basePort: spec.basePort).tag

        // Leftovers of a run that was killed before its teardown.
        try HostCommand.ip("netns", "add", "\(tag)-master1")
        try HostCommand.ip("link", "add", "\(tag)br", "type", "bridge")
        try FileManager.default.createDirectory(atPath: DPDKNetwork.runtimeRoot + "/\(tag)-coordinator",
                                                withIntermediateDirectories: true)

        struct Midway: Error {}
        var pids: [Int32] = []
        #expect(throws: Midway.self) {
            defer { _ = try? launcher.down() }
            let state = try launcher.up(spec) { print("cluster: \($0)") }
            pids = state.processes.map(\.pid)
            // A client still running in its namespace when the test fails.
            let client = try ClientProgram.start(launcher, name: "client1",
                ["fill", "--keys", "100000000", "--table", "endless"])
            pids.append(client.process.processIdentifier)
            usleep(300_000)
            throw Midway()
        }
        #expect(Self.leftovers(tag: tag, pids: pids) == [])
    }
}
