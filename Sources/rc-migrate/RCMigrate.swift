import ArgumentParser
import Foundation
import FulvaCluster
import FulvaCore
import FulvaRAMCloud

/// The operator's tool for migrating RAMCloud tablets with Fulva.
@main
struct RCMigrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rc-migrate",
        abstract: "Migrate RAMCloud tablets live, and run local clusters to try it.",
        discussion: """
            Data goes to stdout, progress and messages to stderr; --json gives JSON instead
            of text. Exit status: 0 done; 1 failed or refused (the message says why, and
            nothing was changed in the cluster); 3 a --wait or --timeout ran out (the
            migration goes on); 4 the migration was cancelled (start --wait); 64 bad
            usage; 128+N killed by signal N (rc-migrate bench).
            A migration runs in the masters: killing rc-migrate does not disturb it.
            """,
        subcommands: [Plan.self, Start.self, StatusCommand.self, List.self, Cancel.self, ThrottleCommand.self, MetricsCommand.self,
                      Cluster.self, Bench.self])

    /// ArgumentParser's main, but a process that made a RAMCloud client
    /// ends without exit()'s cleanup (RAMCloudInProcess).
    static func main() {
        var command: ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do {
            try command.run()
        } catch {
            if RAMCloudInProcess.any {
                let message = fullMessage(for: error)
                if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
                RAMCloudInProcess.exit(exitCode(for: error).rawValue)
            }
            exit(withError: error)
        }
        if RAMCloudInProcess.any { RAMCloudInProcess.exit(0) }
    }
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
        subcommands: [Up.self, Status.self, Down.self, Exec.self, Loss.self])

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start ZooKeeper, a coordinator and masters on this host.",
            discussion: """
                The transport is dpdk where the host allows it (root, iproute2, a
                RAMCloud build with DPDK): each process then runs in a network
                namespace of its own, with DPDK's net_af_packet driver on a veth into
                a bridge. Otherwise udp on loopback. The choice is printed.

                Examples:
                  rc-migrate cluster up --masters 3
                  rc-migrate cluster up --transport udp --base-port 13000
                  rc-migrate cluster up --transport dpdk --packet-loss 1
                """)
        @OptionGroup var options: ClusterOptions
        @Option(help: "Number of masters.") var masters = 2
        @Option(help: "Memory per master, in MB.") var memory = 256
        @Option(help: "Backup replicas per segment (0: masters only).") var replicas = 0
        @Option(help: "Backup-only servers besides the masters (with --replicas: somewhere to re-replicate after a crash).")
        var backups = 0
        @Option(help: "Transport: auto, dpdk, udp or tcp.") var transport = "auto"
        @Option(help: "Over dpdk: percent of frames the bridge drops (nftables).") var packetLoss = 0.0
        @Option(help: "Coordinator port; masters use the following ones.") var basePort = 12_246
        @Option(help: "ZooKeeper client port.") var zookeeperPort = 12_181
        @Flag(help: "Let RAMCloud processes spin when idle (stock behaviour).") var noIdleSleep = false
        @Option(help: "Over dpdk: longest idle sleep in microseconds (the port cannot wake a sleeping process).")
        var dpdkIdleSleepMaxUs = 100

        func run() throws {
            let chosen: ClusterTransport
            if transport == "auto" {
                let (automatic, reason) = ClusterTransport.automatic(home: options.launcher.home)
                chosen = automatic
                FileHandle.standardError.write(Data("rc-migrate: transport \(reason)\n".utf8))
            } else if let named = ClusterTransport(rawValue: transport) {
                chosen = named
            } else {
                throw ValidationError("unknown transport '\(transport)' (auto, dpdk, udp or tcp)")
            }
            if packetLoss != 0 && chosen != .dpdk {
                throw ValidationError("--packet-loss needs the dpdk transport (it is injected on the bridge)")
            }
            var spec = ClusterSpec()
            spec.packetLossPercent = packetLoss
            spec.masters = masters
            spec.masterMemoryMB = memory
            spec.replicas = replicas
            guard backups >= 0 else { throw ValidationError("--backups must be 0 or more") }
            spec.backupServers = backups
            spec.transport = chosen
            spec.basePort = basePort
            spec.zooKeeperPort = zookeeperPort
            spec.idleSleep = !noIdleSleep
            guard (1...1_000_000).contains(dpdkIdleSleepMaxUs) else { throw ValidationError("--dpdk-idle-sleep-max-us must be in 1...1000000") }
            spec.dpdkIdleSleepMaxMicros = dpdkIdleSleepMaxUs
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

extension Cluster {
    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a client program against the cluster, set up as the cluster's own processes.",
            discussion: """
                Over dpdk the program runs in a network namespace of its own (created on
                first use, removed by `cluster down`) with RAMCLOUD_DPDK_PORT and
                RAMCLOUD_DPDK_EAL set, which libramcloud reads; over udp or tcp it runs
                here. Either way it gets the cluster's idle-sleep setting, and
                FULVA_CLUSTER_STORAGE holds the locator to connect with.

                Example:
                  rc-migrate cluster exec -- sh -c '$FULVA_RAMCLOUD_HOME/bin/client -C "$FULVA_CLUSTER_STORAGE"'
                  rc-migrate cluster exec --name client2 -- fulva-workload run --operations 1000
                """)
        @OptionGroup var options: ClusterOptions
        @Option(help: "Name of the client (one namespace per name over dpdk).") var name = "client1"
        @Argument(parsing: .captureForPassthrough, help: "The program and its arguments.") var command: [String] = []

        func run() throws {
            let command = command.first == "--" ? Array(command.dropFirst()) : command
            guard let program = command.first else { throw ValidationError("no program given (rc-migrate cluster exec -- PROGRAM ARGS...)") }
            do {
                let launcher = options.launcher
                guard let state = try launcher.load() else { throw ClusterError("no cluster in \(options.dir)") }
                let (prefix, environment) = try launcher.clientPlacement(name)
                for (key, value) in environment { setenv(key, value, 1) }
                setenv("FULVA_CLUSTER_STORAGE", state.externalStorage, 1)
                let resolved = program.contains("/") ? program : (Self.which(program) ?? program)
                let argv = prefix + [resolved] + command.dropFirst()
                let cArguments = argv.map { strdup($0) } + [nil]
                execv(argv[0], cArguments)
                throw ClusterError("cannot run \(argv[0]): \(String(cString: strerror(errno)))")
            } catch let error as ClusterError {
                throw fail(error.description)
            }
        }

        /// The program next to rc-migrate (the project's own tools), else on PATH.
        static func which(_ program: String) -> String? {
            let own = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                .deletingLastPathComponent().appendingPathComponent(program).path
            if FileManager.default.isExecutableFile(atPath: own) { return own }
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            return path.split(separator: ":").map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        }
    }

    struct Loss: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop a percentage of the frames on a dpdk cluster's bridge (nftables); 0 stops it.",
            discussion: "Example:\n  rc-migrate cluster loss 1")
        @OptionGroup var options: ClusterOptions
        @Argument(help: "Percent of frames to drop, in [0, 100).") var percent: Double

        func run() throws {
            do { try options.launcher.setPacketLoss(percent) } catch let error as ClusterError { throw fail(error.description) }
        }
    }
}

/// Prints an error on stderr and returns exit status 1.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("rc-migrate: error: \(message)\n".utf8))
    return ExitCode(1)
}
