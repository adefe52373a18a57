import Foundation
import FulvaRAMCloud
#if canImport(Glibc)
import Glibc
#endif

/// The transports a local cluster can use.
public enum ClusterTransport: String, Codable, Sendable, CaseIterable {
    /// RAMCloud's BasicTransport over the DPDK driver, one network namespace
    /// per process (DPDKNetwork).
    case dpdk
    case udp
    case tcp

    func locator(port: Int) -> String {
        switch self {
        // The driver fills in the port's MAC address.
        case .dpdk: return "basic+dpdk:"
        case .udp: return "basic+udp:host=127.0.0.1,port=\(port)"
        case .tcp: return "tcp:host=127.0.0.1,port=\(port)"
        }
    }

    /// dpdk where this host can build the namespaces and the RAMCloud build
    /// has the DPDK driver, udp otherwise; with the reason, to be shown.
    public static func automatic(home: RAMCloudHome) -> (ClusterTransport, String) {
        if let reason = DPDKNetwork.unavailableReason() { return (.udp, "udp, not dpdk: \(reason)") }
        if !home.hasDPDK { return (.udp, "udp, not dpdk: the RAMCloud build at \(home.path) has no DPDK driver") }
        return (.dpdk, "dpdk: one network namespace per process, net_af_packet on veths into a bridge")
    }
}

/// What to start.
public struct ClusterSpec: Codable, Sendable {
    public var masters = 2
    /// Memory of each master, in MB (server -t).
    public var masterMemoryMB = 256
    /// Backup replicas per segment (server -r); 0 runs masters only.
    public var replicas = 0
    /// Servers that are backups only (server --backupOnly), named backup1...,
    /// on the ports after the masters'. With replicas, a master that loses
    /// a backup re-replicates to another; with two masters and nothing
    /// else, the survivor of a crash would have nowhere to write.
    public var backupServers: Int? = 0
    public var transport = ClusterTransport.udp
    /// The coordinator listens here; masters on the following ports.
    public var basePort = 12_246
    public var zooKeeperPort = 12_181
    /// RAMCLOUD_IDLE_SLEEP: processes sleep instead of spinning when idle.
    public var idleSleep = true
    /// Masters load Fulva's plugin when it is built (scripts/build-plugin).
    public var fulvaPlugin = true
    /// Extra environment of the masters (e.g. FULVA_FAULTS in tests).
    public var masterEnvironment: [String: String] = [:]
    /// Seconds to wait for each process to serve.
    public var startTimeout = 60.0
    /// Over dpdk: frames the bridge drops, in percent.
    public var packetLossPercent = 0.0
    /// RAMCLOUD_IDLE_SLEEP_MAX_US over dpdk, whose port cannot wake a
    /// sleeping process: the longest a frame may wait to be seen.
    public var dpdkIdleSleepMaxMicros = 100
    /// The coordinator's --deadServerTimeout: how long a server suspected
    /// of a crash may stay silent before it is declared dead. RAMCloud's
    /// 250 ms assumes a core per process; a local cluster shares a few
    /// cores with its clients and stalls longer than that under load.
    public var deadServerTimeoutMillis = 2000
    /// RAMCLOUD_RPC_TIMEOUT_MS of every process of the cluster and its
    /// clients: how long a silent peer is waited for before an RPC to it is
    /// aborted (RAMCloud's BasicTransport: 80 ms). An RPC from the
    /// coordinator that is aborted has its server declared crashed, and a
    /// loaded small host stalls a process for longer than 80 ms.
    public var rpcTimeoutMillis = 1000
    /// RAMCLOUD_WORKER_POLL_US (patch 0027): how long a master's worker
    /// thread spins for the next request before it sleeps (nil: RAMCloud's
    /// own, 50 us with idle sleep). Spinning workers took 18% of a 2-core
    /// host during a migration (perf), CPU the threads serving clients
    /// needed: `rc-migrate bench` measured Fulva's throughput during a
    /// migration at 52% of the baseline with 0 against 36% with 50 on udp,
    /// 95% against 73% on dpdk, the baseline unchanged on udp.
    public var workerPollMicros: Int? = 0

    public init() {}
}

/// One process of a running cluster.
public struct ClusterProcess: Codable, Sendable {
    public var name: String
    public var program: String
    public var arguments: [String]
    public var pid: Int32
    public var locator: String?
    public var log: String
}

/// What `up` wrote to the cluster directory (cluster.json).
public struct ClusterState: Codable, Sendable {
    public var spec: ClusterSpec
    public var ramcloudHome: String
    public var processes: [ClusterProcess]
    /// What clients connect to: RAMCloud's "zk:" locator finds the coordinator.
    public var externalStorage: String
    public var coordinatorLocator: String
    /// The namespaces and bridge of a dpdk cluster.
    public var network: DPDKNetwork?

    public func process(_ name: String) -> ClusterProcess? { processes.first { $0.name == name } }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Starts, inspects and stops a local RAMCloud cluster: ZooKeeper (Debian's
/// package, private data directory, loopback port), a coordinator keeping
/// its state in ZooKeeper, and N masters. Pids, locators and logs go to the
/// cluster directory; `down` stops exactly those processes.
public final class ClusterLauncher {
    public let directory: String
    public let home: RAMCloudHome
    var stateFile: String { directory + "/cluster.json" }

    public init(directory: String, home: RAMCloudHome = RAMCloudHome()) {
        // Absolute: processes that enter a network namespace must find
        // their files wherever they run.
        let absolute = directory.hasPrefix("/") ? directory
            : FileManager.default.currentDirectoryPath + "/" + directory
        self.directory = (absolute as NSString).standardizingPath
        self.home = home
    }

    public static let zooKeeperJar = "/usr/share/java/zookeeper.jar"
    public static let zooKeeperConfiguration = "/etc/zookeeper/conf"

    // MARK: State

    public func load() throws -> ClusterState? {
        guard let data = FileManager.default.contents(atPath: stateFile) else { return nil }
        do { return try JSONDecoder().decode(ClusterState.self, from: data) } catch {
            throw ClusterError("cannot read \(stateFile): \(error)")
        }
    }

    func save(_ state: ClusterState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: URL(fileURLWithPath: stateFile))
    }

    // MARK: Up

    /// Starts the cluster and returns once every master has enlisted. On
    /// any failure it stops what it started and throws, naming the process
    /// and showing the tail of its log.
    public func up(_ spec: ClusterSpec, progress: (String) -> Void = { _ in }) throws -> ClusterState {
        if let existing = try load(), existing.processes.contains(where: { Processes.isRunning($0.pid, program: $0.program) }) {
            throw ClusterError("a cluster already runs from \(directory) (rc-migrate cluster down first)")
        }
        if let missing = home.missing { throw ClusterError(missing) }
        guard FileManager.default.fileExists(atPath: Self.zooKeeperJar) else {
            throw ClusterError("ZooKeeper is not installed (\(Self.zooKeeperJar) missing): apt-get install zookeeper")
        }
        guard spec.masters >= 1 else { throw ClusterError("a cluster needs at least one master") }
        if spec.transport == .dpdk {
            if let reason = DPDKNetwork.unavailableReason() { throw ClusterError("cannot run over dpdk: \(reason)") }
            guard home.hasDPDK else { throw ClusterError("cannot run over dpdk: the RAMCloud build at \(home.path) has no DPDK driver") }
        }
        let udp = spec.transport == .udp
        let ports = [(spec.zooKeeperPort, false)]
            + (spec.transport == .dpdk ? [] : (0...spec.masters + (spec.backupServers ?? 0)).map { (spec.basePort + $0, udp) })
        // A port that a cluster stopped a moment ago may take the kernel a
        // little while to release (seen once in a run of many clusters on
        // the same ports): wait a few seconds before calling it taken.
        for (port, isUDP) in ports {
            if Processes.portInUse(port, udp: isUDP) { progress("port \(port) is in use; waiting up to 10 s for it to be released") }
            for _ in 0..<100 where Processes.portInUse(port, udp: isUDP) { usleep(100_000) }
            if Processes.portInUse(port, udp: isUDP) {
                throw ClusterError("port \(port) on 127.0.0.1 is already in use (choose others with --base-port / --zookeeper-port)")
            }
        }
        // A new cluster: ZooKeeper starts empty (the coordinator resets its
        // own state anyway; migration records of an older cluster would
        // name tablets that no longer exist).
        try? FileManager.default.removeItem(atPath: directory + "/zookeeper")
        try FileManager.default.createDirectory(atPath: directory + "/zookeeper", withIntermediateDirectories: true)
        // Fresh logs: readiness is read from them, and a line left by an
        // earlier cluster in this directory must not count. Fresh backup
        // files too: a backup that finds replicas on disk enlists as the
        // replacement of the server that wrote them.
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            where file.hasSuffix(".log") || file.hasSuffix(".backup") {
            try? FileManager.default.removeItem(atPath: directory + "/" + file)
        }

        var network: DPDKNetwork? = nil
        if spec.transport == .dpdk {
            network = DPDKNetwork(basePort: spec.basePort)
            network!.packetLossPercent = spec.packetLossPercent
        }
        let zooKeeperHost = network?.hubAddress ?? "127.0.0.1"
        let storage = "zk:\(zooKeeperHost):\(spec.zooKeeperPort)"
        var state = ClusterState(spec: spec, ramcloudHome: home.path, processes: [], externalStorage: storage,
                                 coordinatorLocator: spec.transport.locator(port: spec.basePort), network: network)
        do {
            if var network = state.network {
                progress("building the DPDK network: bridge \(network.bridge) on \(network.hubAddress)/24, one namespace per process")
                try save(state)   // so that down() finds a partly built network
                try network.createHub()
                state.network = network
                try save(state)
            }
            progress("starting ZooKeeper on \(zooKeeperHost):\(spec.zooKeeperPort)")
            state.processes.append(try startZooKeeper(spec, host: zooKeeperHost))
            try save(state)
            try waitUntil("zookeeper", state, timeout: spec.startTimeout) {
                Processes.accepts(spec.zooKeeperPort, host: zooKeeperHost)
            }

            progress("starting the coordinator on \(state.coordinatorLocator)")
            state.processes.append(try startCoordinator(&state, reset: true))
            try save(state)
            try waitForLog("coordinator", state, marker: "Cluster name is", timeout: spec.startTimeout)

            for i in 1...spec.masters {
                let locator = spec.transport.locator(port: spec.basePort + i)
                progress("starting master\(i) on \(locator)")
                state.processes.append(try startMaster(i, locator: locator, &state))
                try save(state)
            }
            for i in stride(from: 1, through: spec.backupServers ?? 0, by: 1) {
                let locator = spec.transport.locator(port: spec.basePort + spec.masters + i)
                progress("starting backup\(i) on \(locator)")
                state.processes.append(try startBackup(i, locator: locator, &state))
                try save(state)
            }
            for i in 1...spec.masters {
                try waitForLog("master\(i)", state, marker: "Enlisted; serverId", timeout: spec.startTimeout)
            }
            for i in stride(from: 1, through: spec.backupServers ?? 0, by: 1) {
                try waitForLog("backup\(i)", state, marker: "Enlisted; serverId", timeout: spec.startTimeout)
            }
        } catch {
            for process in state.processes.reversed() { Processes.stop(process.pid, program: process.program) }
            state.network?.remove()
            try? FileManager.default.removeItem(atPath: stateFile)
            throw error
        }
        progress("cluster up: \(spec.masters) masters over \(spec.transport), clients connect with \(storage)")
        return state
    }

    func environment(_ spec: ClusterSpec) -> [String: String] {
        var environment = spec.idleSleep ? ["RAMCLOUD_IDLE_SLEEP": "1"] : ["RAMCLOUD_IDLE_SLEEP": "0"]
        environment["RAMCLOUD_RPC_TIMEOUT_MS"] = String(spec.rpcTimeoutMillis)
        if let micros = spec.workerPollMicros { environment["RAMCLOUD_WORKER_POLL_US"] = String(micros) }
        if spec.transport == .dpdk { environment["RAMCLOUD_IDLE_SLEEP_MAX_US"] = String(spec.dpdkIdleSleepMaxMicros) }
        return environment
    }

    /// How to run a RAMCloud program as cluster member `name`: the command
    /// prefix (entering its namespace over dpdk) and its environment (idle
    /// sleep; DPDK's port and EAL arguments). Over dpdk the namespace is
    /// created on first use and recorded, so `down` removes it.
    public func placement(_ name: String, in state: inout ClusterState) throws -> (prefix: [String], environment: [String: String]) {
        var environment = environment(state.spec)
        guard var network = state.network else { return ([], environment) }
        let member = try network.addMember(name)
        state.network = network
        try save(state)
        environment.merge(network.environment(for: member)) { _, new in new }
        return (network.prefix(for: member), environment)
    }

    /// `placement` for a client program of a running cluster (rc-migrate
    /// cluster exec, tests, benchmarks).
    public func clientPlacement(_ name: String) throws -> (prefix: [String], environment: [String: String]) {
        guard var state = try load() else { throw ClusterError("no cluster in \(directory) (rc-migrate cluster up starts one)") }
        return try placement(name, in: &state)
    }

    /// Sets the loss the bridge injects (dpdk clusters only).
    public func setPacketLoss(_ percent: Double) throws {
        guard var state = try load() else { throw ClusterError("no cluster in \(directory)") }
        guard var network = state.network else { throw ClusterError("packet loss is injected on the DPDK bridge; this cluster runs over \(state.spec.transport)") }
        try network.setPacketLoss(percent)
        state.network = network
        state.spec.packetLossPercent = percent
        try save(state)
    }

    func launch(_ name: String, _ arguments: [String], locator: String?, environment: [String: String],
                prefix: [String] = []) throws -> ClusterProcess {
        let log = directory + "/\(name).log"
        let pid = try Processes.spawn(prefix + arguments, log: log, environment: environment)
        return ClusterProcess(name: name, program: arguments[0], arguments: Array(arguments.dropFirst()), pid: pid,
                              locator: locator, log: log)
    }

    func startZooKeeper(_ spec: ClusterSpec, host: String) throws -> ClusterProcess {
        let data = directory + "/zookeeper"
        // forceSync=no: a local cluster's ZooKeeper lives and dies with its
        // directory, and an fsync stalled by a busy disk (seconds, seen on
        // shared hosts) would otherwise hold up the tablet-map change that
        // ends a migration's freeze. A production ensemble keeps its own
        // settings.
        let configuration = """
            tickTime=2000
            initLimit=10
            syncLimit=5
            forceSync=no
            dataDir=\(data)
            clientPort=\(spec.zooKeeperPort)
            clientPortAddress=\(host)
            admin.enableServer=false
            maxClientCnxns=200

            """
        let file = directory + "/zoo.cfg"
        try configuration.write(toFile: file, atomically: true, encoding: .utf8)
        let java = ["/usr/bin/java", "-Xmx256m", "-cp", "\(Self.zooKeeperConfiguration):\(Self.zooKeeperJar)",
                    "-Dzookeeper.admin.enableServer=false",
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain", file]
        return try launch("zookeeper", java, locator: "\(host):\(spec.zooKeeperPort)", environment: [:])
    }

    func startCoordinator(_ state: inout ClusterState, reset: Bool) throws -> ClusterProcess {
        var arguments = [home.coordinator, "-C", state.coordinatorLocator, "-x", state.externalStorage,
                         "--deadServerTimeout", String(state.spec.deadServerTimeoutMillis)]
        if reset { arguments.append("--reset") }
        let (prefix, environment) = try placement("coordinator", in: &state)
        return try launch("coordinator", arguments, locator: state.coordinatorLocator,
                          environment: environment, prefix: prefix)
    }

    func startMaster(_ index: Int, locator: String, _ state: inout ClusterState) throws -> ClusterProcess {
        var arguments = [home.server, "-L", locator, "-x", state.externalStorage,
                         "-t", String(state.spec.masterMemoryMB), "-r", String(state.spec.replicas),
                         "--maxCores", "2"]
        if state.spec.replicas == 0 {
            arguments.append("--masterOnly")
        } else {
            // Each master's backup keeps its replicas in a file of its own
            // in the cluster directory (RAMCloud's default is one path,
            // /var/tmp/backup.log, for every server on the host), with room
            // for four times the master's memory.
            arguments += ["-f", directory + "/master\(index).backup",
                          "--segmentFrames", String(max(64, state.spec.masterMemoryMB * 4 / 8))]
        }
        var (prefix, environment) = try placement("master\(index)", in: &state)
        if state.spec.fulvaPlugin, let plugin = home.plugin { environment["FULVA_PLUGIN"] = plugin }
        environment.merge(state.spec.masterEnvironment) { _, extra in extra }
        return try launch("master\(index)", arguments, locator: locator, environment: environment, prefix: prefix)
    }

    func startBackup(_ index: Int, locator: String, _ state: inout ClusterState) throws -> ClusterProcess {
        let arguments = [home.server, "-L", locator, "-x", state.externalStorage, "--backupOnly",
                         "-f", directory + "/backup\(index).backup",
                         "--segmentFrames", String(max(64, state.spec.masterMemoryMB * 4 / 8)), "--maxCores", "2"]
        let (prefix, environment) = try placement("backup\(index)", in: &state)
        return try launch("backup\(index)", arguments, locator: locator, environment: environment, prefix: prefix)
    }

    func waitUntil(_ name: String, _ state: ClusterState, timeout: Double, _ ready: () -> Bool) throws {
        guard let process = state.process(name) else { throw ClusterError("no process \(name)") }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if ready() { return }
            guard Processes.isRunning(process.pid, program: process.program) else {
                let ending = Processes.endings[process.pid].map { " (\($0))" } ?? ""
                throw ClusterError("\(name) (pid \(process.pid)) exited while starting\(ending); last lines of \(process.log):\n"
                    + Processes.tail(process.log))
            }
            usleep(100_000)
        }
        throw ClusterError("\(name) did not come up within \(Int(timeout)) s; last lines of \(process.log):\n"
            + Processes.tail(process.log))
    }

    func waitForLog(_ name: String, _ state: ClusterState, marker: String, timeout: Double) throws {
        guard let process = state.process(name) else { throw ClusterError("no process \(name)") }
        try waitUntil(name, state, timeout: timeout) {
            (try? String(contentsOfFile: process.log, encoding: .utf8))?.contains(marker) ?? false
        }
    }

    // MARK: Restarting one process

    /// Kills a process of the cluster with SIGKILL (a crash, for tests and drills).
    public func kill(_ name: String) throws {
        guard let state = try load(), let process = state.process(name) else { throw ClusterError("no process \(name) in \(directory)") }
        if Processes.isRunning(process.pid, program: process.program) {
            Glibc.kill(process.pid, SIGKILL)
            for _ in 0..<200 where Processes.isRunning(process.pid, program: process.program) { usleep(10_000) }
        }
    }

    /// Starts the coordinator again on its locator; it recovers the cluster
    /// (tablet map included) from ZooKeeper.
    public func restartCoordinator() throws -> ClusterState {
        guard var state = try load(), let index = state.processes.firstIndex(where: { $0.name == "coordinator" }) else {
            throw ClusterError("no cluster in \(directory)")
        }
        let old = state.processes[index]
        Processes.stop(old.pid, program: old.program)
        let before = (try? String(contentsOfFile: old.log, encoding: .utf8))?.count ?? 0
        state.processes[index] = try startCoordinator(&state, reset: false)
        try save(state)
        let log = state.processes[index].log
        try waitUntil("coordinator", state, timeout: state.spec.startTimeout) {
            guard let text = try? String(contentsOfFile: log, encoding: .utf8), text.count > before else { return false }
            return text.dropFirst(before).contains("Coordinator state has been recovered")
                || text.dropFirst(before).contains("Cluster name is")
        }
        return state
    }

    // MARK: Status and down

    public struct ProcessStatus: Sendable {
        public var process: ClusterProcess
        public var running: Bool
        /// The log's last lines, for a process that died.
        public var logTail: String?
    }

    public func status() throws -> [ProcessStatus] {
        guard let state = try load() else { throw ClusterError("no cluster in \(directory) (rc-migrate cluster up starts one)") }
        return state.processes.map { process in
            let running = Processes.isRunning(process.pid, program: process.program)
            return ProcessStatus(process: process, running: running, logTail: running ? nil : Processes.tail(process.log))
        }
    }

    /// Stops every process the cluster directory names (masters first,
    /// ZooKeeper last). Returns the names of those that were running.
    @discardableResult
    public func down() throws -> [String] {
        guard let state = try load() else { return [] }
        var stopped: [String] = []
        for process in state.processes.reversed() where Processes.isRunning(process.pid, program: process.program) {
            Processes.stop(process.pid, program: process.program)
            stopped.append(process.name)
        }
        // Also kills client programs still running in the namespaces.
        state.network?.remove()
        try? FileManager.default.removeItem(atPath: stateFile)
        return stopped
    }
}
