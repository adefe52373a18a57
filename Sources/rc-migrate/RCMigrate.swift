import ArgumentParser
import Foundation
import FulvaCluster
import FulvaRAMCloud

/// The operator's tool for migrating RAMCloud tablets with Fulva.
@main
struct RCMigrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rc-migrate",
        abstract: "Migrate RAMCloud tablets live, and run local clusters to try it.",
        subcommands: [Cluster.self])
}

struct ClusterOptions: ParsableArguments {
    @Option(help: "Cluster directory (pids, logs, locators).")
    var dir = ".fulva-cluster"

    @Option(help: "Patched RAMCloud build (default: $FULVA_RAMCLOUD_HOME or ~/.cache/fulva/ramcloud).")
    var ramcloudHome: String?

    var launcher: ClusterLauncher {
        ClusterLauncher(directory: dir, home: ramcloudHome.map { RAMCloudHome(path: $0) } ?? RAMCloudHome())
    }
}

struct Cluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start, inspect and stop a local cluster (ZooKeeper, coordinator, masters).",
        subcommands: [Up.self, Status.self, Down.self])

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start ZooKeeper, a coordinator and masters on loopback.",
            discussion: """
                Examples:
                  rc-migrate cluster up --masters 3
                  rc-migrate cluster up --transport tcp --base-port 13000
                """)
        @OptionGroup var options: ClusterOptions
        @Option(help: "Number of masters.") var masters = 2
        @Option(help: "Memory per master, in MB.") var memory = 256
        @Option(help: "Backup replicas per segment (0: masters only).") var replicas = 0
        @Option(help: "Transport: udp or tcp.") var transport = "udp"
        @Option(help: "Coordinator port; masters use the following ones.") var basePort = 12_246
        @Option(help: "ZooKeeper client port.") var zookeeperPort = 12_181
        @Flag(help: "Let RAMCloud processes spin when idle (stock behaviour).") var noIdleSleep = false

        func run() throws {
            guard let chosen = ClusterTransport(rawValue: transport) else {
                throw ValidationError("unknown transport '\(transport)' (udp or tcp)")
            }
            var spec = ClusterSpec()
            spec.masters = masters
            spec.masterMemoryMB = memory
            spec.replicas = replicas
            spec.transport = chosen
            spec.basePort = basePort
            spec.zooKeeperPort = zookeeperPort
            spec.idleSleep = !noIdleSleep
            do {
                let state = try options.launcher.up(spec) { FileHandle.standardError.write(Data(("rc-migrate: " + $0 + "\n").utf8)) }
                print(state.externalStorage)
            } catch let error as ClusterError {
                throw fail(error.description)
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the cluster's processes.")
        @OptionGroup var options: ClusterOptions

        func run() throws {
            do {
                var dead = 0
                for status in try options.launcher.status() {
                    let p = status.process
                    print("\(p.name)\t\(status.running ? "running" : "DEAD")\tpid \(p.pid)\t\(p.locator ?? "-")\t\(p.log)")
                    if let tail = status.logTail {
                        dead += 1
                        print(tail.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
                    }
                }
                if dead > 0 { throw ExitCode(1) }
            } catch let error as ClusterError {
                throw fail(error.description)
            }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop exactly the processes the cluster started.")
        @OptionGroup var options: ClusterOptions

        func run() throws {
            let stopped = try options.launcher.down()
            FileHandle.standardError.write(Data("rc-migrate: stopped \(stopped.isEmpty ? "nothing" : stopped.joined(separator: ", "))\n".utf8))
        }
    }
}

/// Prints an error on stderr and returns exit status 1.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("rc-migrate: error: \(message)\n".utf8))
    return ExitCode(1)
}
