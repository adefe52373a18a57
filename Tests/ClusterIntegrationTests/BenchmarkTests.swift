import Foundation
import FulvaBench
import FulvaCluster
import FulvaCore
import FulvaRAMCloud
import FulvaZooKeeper
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FulvaMigrationTests {
    /// rc-migrate bench with a small table: its own cluster, the baseline
    /// and the three strategies under one load, the report, the table and
    /// the plot. Asserts what each part of the report must hold, not the
    /// speed (a 2-core host says little about that; the numbers are read
    /// from full runs by hand).
    @Test func benchmarkReportsEveryStrategyBesideTheBaseline() throws {
        let rcMigrate = try #require(ClientProgram.rcMigrate, "rc-migrate is built with the tests")
        let directory = NSTemporaryDirectory() + "fulva-bench-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Should the benchmark be killed at the timeout, its cluster goes too.
        defer { _ = try? ClusterLauncher(directory: directory + "/cluster").down() }
        let report = directory + "/bench.json", plot = directory + "/bench.svg"
        let run = try HostCommand.execute(
            [rcMigrate, "bench", "--transport", "udp", "--dir", directory + "/cluster", "--records", "20000",
             "--migrate-after", "2", "--tail", "1", "--outstanding", "2", "--read-ratio", "0.9",
             "--output", report, "--plot", plot],
            timeout: 420)
        #expect(run.status == 0, "rc-migrate bench: \(run.errorOutput.suffix(2000))")
        print(run.output)
        // The benchmark stopped the cluster it started.
        #expect(try ClusterLauncher(directory: directory + "/cluster").load() == nil, "the cluster is down")
        let bench = try BenchReport.decode(Data(contentsOf: URL(fileURLWithPath: report)))
        #expect(bench.configuration.outstanding == 2 && bench.configuration.readRatio == 0.9)

        #expect(bench.runs.map(\.name) == ["baseline", "fulva", "rocksteady", "source"])
        #expect(bench.comparisons.map(\.run) == ["fulva", "rocksteady", "source"])
        #expect(bench.comparisons.allSatisfy { $0.targets.count == 4 })
        let ceiling = try #require(bench.ceiling)
        #expect(ceiling.bytes >= 16 << 20 && ceiling.megabytesPerSecond > 0)
        for r in bench.runs {
            let f = r.figures
            // Every run lasts warm-up + window + tail: one point per 100 ms.
            #expect(f.series.count >= 30, "\(r.name): \(f.series.count) points")
            #expect(f.series.contains { $0.migrating.operations > 0 } && f.series.contains { $0.rest.operations > 0 })
            #expect(f.window.operations > 0 && f.window.latency != nil, "\(r.name): operations in the window")
            #expect(f.windowEndMillis > f.windowStartMillis && f.windowStartMillis >= 2000)
            #expect(Set(f.longestGapMillis.keys) == ["read", "write"])
            // Client counts agree with the histories, and the clients counted their UDP bytes.
            #expect(r.clients.operations == f.operations)
            #expect(r.clients.bytesPerRequest > 100, "\(r.name): \(r.clients.bytesPerRequest) B per request")
            #expect(r.clients.shim.loaded, "\(r.name): clients run with the shim")
            if r.name == "baseline" {
                #expect(r.migration == nil && r.clients.shim.migrationsLearned == 0)
                continue
            }
            let m = try #require(r.migration)
            #expect(m.seconds > 0 && m.bytes > 1_000_000 && (m.fractionOfCeiling ?? 0) > 0, "\(r.name): \(m)")
            if r.name != "source" {
                #expect(f.failed == 0, "\(r.name) fails no operation")
                #expect(m.priorityPulls != nil, "\(r.name): the destination logged its priority pulls")
            }
            if r.name == "fulva" {
                // Fulva's replies carry the migration's tag (rocksteady's do not).
                #expect(r.clients.shim.migrationsLearned > 0, "fulva: clients learned the migration")
            }
        }
        let rocksteady = try #require(bench.runs.first { $0.name == "rocksteady" })
        #expect(rocksteady.clients.shim.dualReads == 0, "rocksteady reads one server")
        for name in ["baseline", "fulva", "rocksteady", "source", "bulk-transfer ceiling", "×base"] {
            #expect(run.output.contains(name), "the table shows \(name)")
        }
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        #expect(svg.contains("<svg") && svg.contains("p99 latency"), "an SVG plot with its panels")
    }

    /// Bad benchmark options are refused before anything starts.
    @Test func benchmarkRefusesBadOptions() throws {
        let rcMigrate = try #require(ClientProgram.rcMigrate)
        for (arguments, message) in [(["--records", "10"], "--records must be in"),
                                     (["--strategies", "fulva,teleport"], "unknown strategy 'teleport'"),
                                     (["--strategies", "fulva,fulva"], "at most once"),
                                     (["--read-ratio", "1.5"], "--read-ratio must be in"),
                                     (["--plot", "out.pdf"], "--plot must end in"),
                                     (["--transport", "carrier-pigeon"], "--transport is")] {
            let run = try HostCommand.execute([rcMigrate, "bench", "--dir", "/nonexistent/bench"] + arguments, timeout: 30)
            #expect(run.status == 64, "\(arguments): status \(run.status)")
            #expect(run.errorOutput.contains(message), "\(arguments): \(run.errorOutput)")
        }
    }
}

extension FulvaMigrationTests {
    /// Patch 0025: a master's version clock stays above overwritten
    /// versions, which stock RAMCloud numbers current + 1, so the bound a
    /// source names without scanning its tablet exceeds every version in
    /// it. One key overwritten 500 times on a table of 10 keys: stock, its
    /// version would be ~500 above the clock, and writes at the destination
    /// could be numbered below it (and lose to the pulled copy). Then the
    /// transfer probe between the two masters, and its refusals.
    @Test func theVersionBoundExceedsOverwrittenVersions() throws {
        let cluster = try TestCluster(Self.spec(), seconds: 180, what: "theVersionBoundExceedsOverwrittenVersions")
        defer { cluster.stop() }
        let state = cluster.state
        try Self.waitForPlugins(state)
        let admin = try RAMCloudClient(library: try RAMCloudLibrary(path: Build.home.library),
                                       coordinator: state.externalStorage)
        let table = try admin.createTable("overwritten")
        for i in 0..<10 { _ = try admin.write(table: table, key: Self.protocolKey(i), value: Self.bytes(Int64(i))) }
        var highest: UInt64 = 0
        for n in 0..<500 { highest = try admin.write(table: table, key: Self.protocolKey(3), value: Self.bytes(Int64(n))) }
        let source = try admin.owner(table: table, keyHash: 0)
        let destination = try #require(try Self.masters(admin).first { $0 != source })
        let store = try MigrationRecordStore(zooKeeper: try ZooKeeper(locator: state.externalStorage))
        let record = try Self.migrate(admin, store, table: table, from: source, to: destination, partitions: 2)
        #expect(record.phase == .done, "\(record.lastError ?? "")")
        let bound = try #require(record.versionBound)
        #expect(bound > highest, "version bound \(bound) above the overwritten key's version \(highest)")
        // A write at the new owner is numbered above everything the source held.
        let next = try admin.write(table: table, key: Self.protocolKey(3), value: Self.bytes(-1))
        #expect(next > highest)

        // The transfer probe between the two masters, and its bad input.
        let probed = try admin.transferProbe(from: ServerID(source), to: ServerID(destination), bytes: 4 << 20,
                                             chunkBytes: 256 * 1024, outstanding: 4)
        #expect(probed.bytes == 4 << 20 && probed.nanoseconds > 0, "\(probed)")
        for (from, chunk, outstanding, message) in [(destination, UInt32(1024), UInt32(4), "is this master"),
                                                    (source, 0, 4, "chunk bytes must be in"),
                                                    (source, 1024, 65, "outstanding requests in"),
                                                    (999, 1024, 4, "not up in the cluster")] {
            do {
                _ = try admin.transferProbe(from: ServerID(from), to: ServerID(destination), bytes: 1 << 20,
                                            chunkBytes: chunk, outstanding: outstanding)
                Issue.record("a probe from \(from) with \(chunk) B x \(outstanding) was accepted")
            } catch {
                #expect(error.message.contains(message), "\(error)")
            }
        }
    }
}
