import Foundation
import FulvaCluster
import FulvaRAMCloud
import Testing

/// Integration tests against the patched RAMCloud build at
/// FULVA_RAMCLOUD_HOME (default ~/.cache/fulva/ramcloud). Without a build
/// they are skipped, and the skip says why.
/// RAMCloud's client retries forever when a server is gone, and a blocked
/// C call cannot be cancelled: if a test overruns, the watchdog stops the
/// cluster and ends the test process with a message, so CI never hangs.
final class Watchdog {
    let item: DispatchWorkItem

    init(seconds: Double, what: String, launcher: ClusterLauncher) {
        item = DispatchWorkItem {
            FileHandle.standardError.write(Data("\(what) overran \(Int(seconds)) s: stopping the cluster and failing\n".utf8))
            for status in (try? launcher.status()) ?? [] where !status.running {
                FileHandle.standardError.write(Data("\(status.process.name) died:\n\(status.logTail ?? "")\n".utf8))
            }
            _ = try? launcher.down()
            _exit(3)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: item)
    }

    deinit { item.cancel() }
}

/// A cluster for one test, watched by a watchdog and stopped by `stop()`
/// (call it in a defer). Its directory is named after its ports, so a
/// cluster that a killed test run left on those ports is stopped first.
final class TestCluster {
    let launcher: ClusterLauncher
    let state: ClusterState
    let watchdog: Watchdog
    let what: String

    /// Where each test's cluster logs are kept after it stops: the next
    /// test reuses the cluster directory (its ports), and a failure is
    /// often read after the suite.
    static let logsDirectory = NSTemporaryDirectory() + "fulva-test-logs"

    init(_ spec: ClusterSpec, seconds: Double, what: String) throws {
        self.what = what
        // The test process is a client of the cluster too (libramcloud in
        // process): the same RPC timeout as the cluster's own processes.
        setenv("RAMCLOUD_RPC_TIMEOUT_MS", String(spec.rpcTimeoutMillis), 1)
        launcher = ClusterLauncher(directory: NSTemporaryDirectory() + "fulva-test-cluster-\(spec.basePort)",
                                   home: Build.home)
        _ = try? launcher.down()
        watchdog = Watchdog(seconds: seconds, what: what, launcher: launcher)
        do {
            state = try launcher.up(spec) { print("cluster: \($0)") }
        } catch {
            _ = try? launcher.down()
            watchdog.item.cancel()
            throw error
        }
    }

    func stop() {
        _ = try? launcher.down()
        watchdog.item.cancel()
        keepLogs()
    }

    /// Copies the cluster's process logs to logsDirectory/<test>/.
    func keepLogs() {
        let fm = FileManager.default
        let kept = Self.logsDirectory + "/" + what
        try? fm.removeItem(atPath: kept)
        guard (try? fm.createDirectory(atPath: kept, withIntermediateDirectories: true)) != nil,
              let names = try? fm.contentsOfDirectory(atPath: launcher.directory) else { return }
        // The servers' logs (clients' logs carry a run number and stay).
        for name in names where name.hasSuffix(".log") && !name.contains("-") {
            try? fm.copyItem(atPath: launcher.directory + "/" + name, toPath: kept + "/" + name)
        }
    }
}

enum Build {
    static let home = RAMCloudHome()
    static let missing: String? = home.missing
    static var present: Bool {
        if let missing { print("RAMCloud integration tests SKIPPED: \(missing)") }
        return missing == nil
    }
}

@Suite(.serialized, .enabled(if: Build.present, "needs a patched RAMCloud build (scripts/build-ramcloud)"),
       .timeLimit(.minutes(10)))
struct LocalClusterTests {
    /// Ports of their own, so a developer's cluster on the defaults is untouched.
    static func spec() -> ClusterSpec {
        var spec = ClusterSpec()
        spec.masters = 2
        spec.masterMemoryMB = 256
        spec.basePort = 14_246
        spec.zooKeeperPort = 14_181
        spec.startTimeout = 90
        return spec
    }

    static func key(_ i: Int) -> [UInt8] { Array("object-\(i)".utf8) }
    static func value(_ i: Int, round: Int) -> [UInt8] { Array("value-\(i)-round-\(round)-".utf8) + [UInt8](repeating: UInt8(i % 251), count: 60) }

    /// RAMCloud's Python bindings, ported to Python 3 by the patch series
    /// and installed in the build's prefix, pass their own unit tests
    /// (oidres, retries, testutil, txramcloud) on Python 3, loading the
    /// patched libramcloud.
    @Test func pythonBindingsPassTheirUnitTestsOnPython3() throws {
        let python = Build.home.path + "/lib/python"
        let outcome = try HostCommand.execute(
            ["/usr/bin/env", "PYTHONPATH=" + python, "RAMCLOUD_LIBRARY=" + Build.home.library,
             "PYTHONDONTWRITEBYTECODE=1", "/usr/bin/python3", "-m", "unittest",
             "test_oidres", "test_retries", "test_testutil", "test_txramcloud"], timeout: 120)
        let summary = outcome.errorOutput.split(separator: "\n").suffix(3).joined(separator: " ")
        print("Python bindings' unit tests: \(summary)")
        #expect(outcome.status == 0, "\(outcome.errorOutput.suffix(3000))")
        #expect(outcome.errorOutput.contains("Ran 104 tests"), "all 104 of the bindings' tests ran: \(summary)")
    }

    @Test func clusterServesMigratesAndRecoversItsTabletMap() throws {
        setenv("RAMCLOUD_IDLE_SLEEP", "1", 1)
        let directory = NSTemporaryDirectory() + "fulva-cluster-\(getpid())"
        let launcher = ClusterLauncher(directory: directory, home: Build.home)
        _ = try? launcher.down()
        let watchdog = Watchdog(seconds: 300, what: "clusterServesMigratesAndRecoversItsTabletMap", launcher: launcher)
        defer {
            withExtendedLifetime(watchdog) {}
            let left = (try? launcher.status())?.filter(\.running).map(\.process.name) ?? []
            _ = try? launcher.down()
            if !left.isEmpty { print("stopped after the test: \(left)") }
        }
        let state = try launcher.up(Self.spec()) { print("cluster: \($0)") }
        #expect(state.processes.map(\.name) == ["zookeeper", "coordinator", "master1", "master2"])

        let library = try RAMCloudLibrary(path: Build.home.library)
        #expect(library.abiVersion == RAMCloudLibrary.expectedABIVersion, "libramcloud carries Fulva's shims")
        do {
            let client = try RAMCloudClient(library: library, coordinator: state.externalStorage)
            // A table spread over both masters tells their server ids apart.
            let probe = try client.createTable("probe", serverSpan: 2)
            var masters: Set<UInt64> = []
            for i in 0..<64 { masters.insert(try client.owner(table: probe, key: Self.key(i))) }
            #expect(masters.count == 2)

            let table = try client.createTable("data")
            for i in 0..<10_000 { try client.write(table: table, key: Self.key(i), value: Self.value(i, round: 1)) }
            for i in 0..<10_000 {
                let read = try #require(try client.read(table: table, key: Self.key(i)))
                #expect(read.value == Self.value(i, round: 1))
            }
            let owner = try client.owner(table: table, key: Self.key(0))
            let other = try #require(masters.subtracting([owner]).first)

            // RAMCloud's own source-driven migration of the whole table.
            try client.migrateTablet(tableID: table, firstKeyHash: 0, lastKeyHash: .max, newOwner: other)
            let after = try RAMCloudClient(library: library, coordinator: state.externalStorage)
            #expect(try after.owner(table: table, key: Self.key(0)) == other)
            var mismatches = 0
            for i in 0..<10_000 where try after.read(table: table, key: Self.key(i))?.value != Self.value(i, round: 1) {
                mismatches += 1
            }
            #expect(mismatches == 0)
            // A migration to a server that is not a master fails cleanly.
            #expect(throws: RAMCloudError.self) {
                try after.migrateTablet(tableID: table, firstKeyHash: 0, lastKeyHash: .max, newOwner: 999)
            }
        }

        // The coordinator crashes and comes back: it recovers the tablet
        // map from ZooKeeper, and a fresh client finds the data where it moved.
        let ownerBefore: UInt64
        do {
            let client = try RAMCloudClient(library: library, coordinator: state.externalStorage)
            ownerBefore = try client.owner(table: try client.tableID("data"), key: Self.key(1))
        }
        try launcher.kill("coordinator")
        _ = try launcher.restartCoordinator()
        do {
            let client = try RAMCloudClient(library: library, coordinator: state.externalStorage)
            let table = try client.tableID("data")
            #expect(try client.owner(table: table, key: Self.key(1)) == ownerBefore)
            for i in stride(from: 0, to: 10_000, by: 97) {
                #expect(try client.read(table: table, key: Self.key(i))?.value == Self.value(i, round: 1))
            }
            try client.write(table: table, key: Self.key(5), value: Self.value(5, round: 2))
            #expect(try client.read(table: table, key: Self.key(5))?.value == Self.value(5, round: 2))
        }

        // A process that dies is reported with the tail of its log.
        try launcher.kill("master2")
        let statuses = try launcher.status()
        let dead = try #require(statuses.first { $0.process.name == "master2" })
        #expect(!dead.running)
        #expect(dead.logTail?.contains("Enlisted") == true || (dead.logTail?.isEmpty == false))
        #expect(statuses.filter(\.running).map(\.process.name) == ["zookeeper", "coordinator", "master1"])

        let pids = statuses.map(\.process)
        let stopped = try launcher.down()
        #expect(Set(stopped) == ["zookeeper", "coordinator", "master1"])
        for process in pids {
            #expect(kill(process.pid, 0) != 0 || !FileManager.default.fileExists(atPath: "/proc/\(process.pid)/cmdline")
                    || (try? String(contentsOfFile: "/proc/\(process.pid)/stat", encoding: .utf8))?.contains(") Z") == true,
                    "\(process.name) (pid \(process.pid)) still runs after down")
        }
    }

    @Test func badClusterRequestsAreClearErrors() throws {
        let directory = NSTemporaryDirectory() + "fulva-cluster-bad-\(getpid())"
        // A port already taken.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(14_381).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        listen(holder, 1)
        var spec = Self.spec()
        spec.zooKeeperPort = 14_381
        let launcher = ClusterLauncher(directory: directory, home: Build.home)
        #expect { try launcher.up(spec) } throws: { ($0 as? ClusterError)?.description.contains("14381") == true }
        // A missing build.
        let nowhere = ClusterLauncher(directory: directory, home: RAMCloudHome(path: "/nonexistent"))
        #expect { try nowhere.up(Self.spec()) } throws: {
            ($0 as? ClusterError)?.description.contains("scripts/build-ramcloud") == true
        }
        // Nothing was left behind: there is no cluster to report on.
        #expect(throws: ClusterError.self) { try launcher.status() }
    }
}
