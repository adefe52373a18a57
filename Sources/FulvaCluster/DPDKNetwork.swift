import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The test topology for RAMCloud over DPDK on a host without a NIC for it:
/// one network namespace per RAMCloud process, a veth from each into a
/// bridge in the host's namespace (the hub), DPDK's `net_af_packet` driver
/// on the namespace's end of the veth, and EAL without huge pages. Each
/// veth also gets an address on the bridge's subnet, so ZooKeeper in the hub
/// is reachable by kernel TCP while RAMCloud's frames go through DPDK.
///
/// Every name derives from a short tag (`fv<coordinator port>`), so a
/// topology left behind by a killed run is found and removed by the next
/// one with the same ports.
public struct DPDKNetwork: Codable, Sendable, Equatable {
    /// One RAMCloud process's place in the topology.
    public struct Member: Codable, Sendable, Equatable {
        public var name: String
        public var namespace: String
        /// The veth end enslaved to the bridge, in the hub.
        public var hostInterface: String
        /// The veth end inside the namespace, driven by DPDK.
        public var interface: String
        public var address: String
        /// DPDK's --file-prefix: its runtime directory is /var/run/dpdk/<prefix>.
        public var filePrefix: String
    }

    public var tag: String
    public var bridge: String
    /// The first three octets of the /24 the bridge and veths live on.
    public var subnet: String
    public var hubAddress: String { subnet + ".1" }
    public var members: [Member] = []
    /// Loss injected on the bridge, in percent of the frames it forwards.
    public var packetLossPercent: Double = 0
    /// The nftables table (bridge family) that drops frames for the loss.
    public var lossTable: String { "fulva_" + tag }

    public static let interfaceInNamespace = "dpdk0"
    public static let runtimeRoot = "/var/run/dpdk"

    /// The topology of a cluster whose coordinator uses `basePort`.
    public init(basePort: Int) {
        tag = "fv\(basePort)"
        bridge = tag + "br"
        // 10.a.b.0/24 from the port: clusters on other ports use other subnets.
        subnet = "10.\(200 + (basePort >> 8) % 50).\(basePort & 0xff)"
    }

    /// Whether this host can build the topology: root, iproute2, nftables
    /// and the kernel's veth and bridge support.
    public static func unavailableReason() -> String? {
        if geteuid() != 0 { return "not root (network namespaces need CAP_NET_ADMIN)" }
        for (tool, package) in [("/usr/sbin/ip", "iproute2"), ("/usr/sbin/nft", "nftables")]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) missing (apt-get install \(package))"
        }
        return nil
    }

    /// EAL arguments for a member's process (see DESIGN.md §5): no huge
    /// pages, no PCI scan, no shared config, no telemetry, one lcore, and
    /// the af_packet port on the namespace's veth.
    public func ealArguments(for member: Member) -> String {
        ["--no-huge", "-m", "128", "--no-pci", "--no-shconf", "--no-telemetry", "-l", "0",
         "--file-prefix=\(member.filePrefix)",
         "--vdev=net_af_packet0,iface=\(member.interface)",
         "--log-level=lib.eal:warning"].joined(separator: " ")
    }

    /// What every RAMCloud process of `member` gets in its environment:
    /// the patched TransportManager reads these when no --dpdkPort/--dpdkEal
    /// option is given (client programs parse no options).
    public func environment(for member: Member) -> [String: String] {
        ["RAMCLOUD_DPDK_PORT": "0", "RAMCLOUD_DPDK_EAL": ealArguments(for: member)]
    }

    /// The command prefix that runs a program inside the member's namespace.
    public func prefix(for member: Member) -> [String] {
        ["/usr/sbin/ip", "netns", "exec", member.namespace]
    }

    public func member(_ name: String) -> Member? { members.first { $0.name == name } }

    // MARK: Building and tearing down

    /// Creates the bridge (with the hub's address) after removing anything
    /// left over under the same tag.
    public mutating func createHub() throws {
        try Self.removeLeftovers(tag: tag)
        try HostCommand.ip("link", "add", bridge, "type", "bridge")
        try HostCommand.ip("addr", "add", hubAddress + "/24", "dev", bridge)
        try HostCommand.ip("link", "set", bridge, "up")
        if packetLossPercent > 0 { try setPacketLoss(packetLossPercent) }
    }

    /// Adds a namespace for a process named `name` (coordinator, master1,
    /// client1, ...) and plugs it into the bridge.
    @discardableResult
    public mutating func addMember(_ name: String) throws -> Member {
        if let existing = member(name) { return existing }
        let index = members.count + 1
        guard index < 240 else { throw ClusterError("too many processes on one DPDK network") }
        let member = Member(name: name, namespace: "\(tag)-\(name)", hostInterface: "\(tag)h\(index)",
                            interface: Self.interfaceInNamespace, address: "\(subnet).\(10 + index)",
                            filePrefix: "\(tag)-\(name)")
        members.append(member)
        let temporary = "\(tag)n\(index)"
        try HostCommand.ip("netns", "add", member.namespace)
        try HostCommand.ip("link", "add", member.hostInterface, "type", "veth", "peer", "name", temporary)
        try HostCommand.ip("link", "set", temporary, "netns", member.namespace)
        try HostCommand.ip("-n", member.namespace, "link", "set", temporary, "name", member.interface)
        try HostCommand.ip("-n", member.namespace, "addr", "add", member.address + "/24", "dev", member.interface)
        try HostCommand.ip("-n", member.namespace, "link", "set", member.interface, "up")
        try HostCommand.ip("-n", member.namespace, "link", "set", "lo", "up")
        try HostCommand.ip("link", "set", member.hostInterface, "master", bridge)
        try HostCommand.ip("link", "set", member.hostInterface, "up")
        return member
    }

    /// Drops `percent` of the frames the bridge forwards between members,
    /// RAMCloud's and the kernel's alike; 0 removes the loss. Done with an
    /// nftables rule in the bridge's forward hook (random numbers from
    /// numgen) rather than tc netem: it needs no qdisc module (some kernels
    /// are built without netem) and covers every port, present and future.
    public mutating func setPacketLoss(_ percent: Double) throws {
        guard percent >= 0, percent < 100 else { throw ClusterError("packet loss must be in [0, 100), not \(percent)") }
        Self.removeLossTable(lossTable)
        packetLossPercent = percent
        guard percent > 0 else { return }
        let perHundredThousand = Int((percent * 1000).rounded())
        try HostCommand.run("/usr/sbin/nft", "add", "table", "bridge", lossTable)
        try HostCommand.run("/usr/sbin/nft", "add", "chain", "bridge", lossTable, "forward",
                            "{ type filter hook forward priority 0; policy accept; }")
        try HostCommand.run("/usr/sbin/nft", "add", "rule", "bridge", lossTable, "forward",
                            "iifname", "\(tag)h*", "numgen", "random", "mod", "100000", "<", String(perHundredThousand),
                            "counter", "drop")
    }

    /// Frames dropped by the loss rule so far.
    public func droppedFrames() -> UInt64 {
        guard let listing = try? HostCommand.run("/usr/sbin/nft", "list", "table", "bridge", lossTable),
              let range = listing.range(of: "counter packets ") else { return 0 }
        return UInt64(listing[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    static func removeLossTable(_ table: String) {
        _ = try? HostCommand.run("/usr/sbin/nft", "delete", "table", "bridge", table)
    }

    /// Kills whatever still runs in the namespaces, deletes them (which
    /// deletes their veths), the bridge and DPDK's runtime directories.
    /// Safe to call on a topology that was only partly built.
    public func remove() {
        for member in members {
            Self.killProcesses(inNamespace: member.namespace)
            _ = try? HostCommand.ip("netns", "del", member.namespace)
            _ = try? HostCommand.ip("link", "del", member.hostInterface)
            try? FileManager.default.removeItem(atPath: Self.runtimeRoot + "/" + member.filePrefix)
        }
        _ = try? HostCommand.ip("link", "del", bridge)
        Self.removeLossTable(lossTable)
    }

    /// Removes namespaces, interfaces and runtime directories named after
    /// `tag` that an earlier run left behind (killed before its teardown).
    public static func removeLeftovers(tag: String) throws {
        for namespace in leftoverNamespaces(tag: tag) {
            killProcesses(inNamespace: namespace)
            try HostCommand.ip("netns", "del", namespace)
        }
        let links = (try? HostCommand.run("/usr/sbin/ip", "-o", "link", "show")) ?? ""
        for line in links.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2)
            guard fields.count >= 2 else { continue }
            let name = fields[1].trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) ?? ""
            if name.hasPrefix(tag) { _ = try? HostCommand.ip("link", "del", name) }
        }
        let runtime = (try? FileManager.default.contentsOfDirectory(atPath: runtimeRoot)) ?? []
        for directory in runtime where directory.hasPrefix(tag + "-") {
            try? FileManager.default.removeItem(atPath: runtimeRoot + "/" + directory)
        }
        removeLossTable("fulva_" + tag)
    }

    /// Namespaces whose name starts with `tag-`.
    public static func leftoverNamespaces(tag: String) -> [String] {
        let list = (try? HostCommand.run("/usr/sbin/ip", "netns", "list")) ?? ""
        return list.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.hasPrefix(tag + "-") }
    }

    static func killProcesses(inNamespace namespace: String) {
        for _ in 0..<50 {
            let pids = ((try? HostCommand.run("/usr/sbin/ip", "netns", "pids", namespace)) ?? "")
                .split(separator: "\n").compactMap { pid_t($0.trimmingCharacters(in: .whitespaces)) }
            if pids.isEmpty { return }
            for pid in pids { kill(pid, SIGKILL) }
            for pid in pids { var status: Int32 = 0; _ = waitpid(pid, &status, WNOHANG) }
            usleep(20_000)
        }
    }
}

/// The one place the launcher runs host tools (ip, nft): synchronous,
/// bounded in time, and failing with the tool's own message.
public enum HostCommand {
    /// Every command run, when tracing is on (FULVA_TRACE_HOST_COMMANDS=1).
    static let tracing = ProcessInfo.processInfo.environment["FULVA_TRACE_HOST_COMMANDS"] == "1"

    @discardableResult
    public static func ip(_ arguments: String...) throws -> String {
        try run(["/usr/sbin/ip"] + arguments)
    }

    @discardableResult
    public static func run(_ arguments: String...) throws -> String { try run(arguments) }

    @discardableResult
    public static func run(_ arguments: [String], timeout: Double = 20) throws -> String {
        let outcome = try execute(arguments, timeout: timeout)
        let text = outcome.output + outcome.errorOutput
        guard outcome.status == 0 else {
            throw ClusterError("\(arguments.joined(separator: " ")) failed (exit \(outcome.status)): "
                + text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return text
    }

    /// How a program ended and what it printed on stdout and stderr.
    public struct Outcome: Sendable {
        public var status: Int32
        public var output: String
        public var errorOutput: String
    }

    /// Runs a program to its end, at most `timeout` seconds (then kills it
    /// and throws); a non-zero exit status is returned, not thrown.
    public static func execute(_ arguments: [String], timeout: Double = 20) throws -> Outcome {
        if tracing { FileHandle.standardError.write(Data(("+ " + arguments.joined(separator: " ") + "\n").utf8)) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        // Output goes to files: a pipe nobody reads while waiting could fill
        // up and block the program.
        let base = NSTemporaryDirectory() + "fulva-host-command-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        var handles: [FileHandle] = []
        for path in [base + ".out", base + ".err"] {
            guard FileManager.default.createFile(atPath: path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: path) else {
                throw ClusterError("cannot create \(path)")
            }
            handles.append(handle)
        }
        defer {
            for handle in handles { try? handle.close() }
            for path in [base + ".out", base + ".err"] { try? FileManager.default.removeItem(atPath: path) }
        }
        process.standardOutput = handles[0]
        process.standardError = handles[1]
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(1_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw ClusterError("\(arguments.joined(separator: " ")) did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()
        let read = { (path: String) in String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
        return Outcome(status: process.terminationStatus, output: read(base + ".out"), errorOutput: read(base + ".err"))
    }
}
