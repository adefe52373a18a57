import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starting and stopping the cluster's daemons. They run in a session of
/// their own (they outlive the command that started them) with output
/// appended to a log file; they are stopped by pid, and only when the pid
/// still runs the program we started (pids are reused).
enum Processes {
    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts `arguments[0]` detached, stdout and stderr appended to `log`.
    static func spawn(_ arguments: [String], log: String, environment: [String: String]) throws -> pid_t {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc 2.26+; the macro is not imported): a new session.
        posix_spawnattr_setflags(&attributes, 0x80)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var merged = ProcessInfo.processInfo.environment
        for (k, v) in environment { merged[k] = v }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &fileActions, &attributes, argv, envp)
        guard rc == 0 else {
            throw SpawnError(description: "cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// How reaped children ended ("exit status 1", "signal 9"), for messages.
    nonisolated(unsafe) static var endings: [pid_t: String] = [:]

    /// The command line of a running pid, or nil when it is gone (zombies
    /// of our own children are reaped here).
    static func commandLine(_ pid: pid_t) -> [String]? {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            let signal = status & 0x7f
            endings[pid] = signal == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(signal)"
            return nil
        }
        guard kill(pid, 0) == 0 || errno == EPERM,
              let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" {
            return nil
        }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether `pid` still runs the program of `arguments` (not a reused pid).
    /// A process in the middle of execve() (ip netns exec becoming the
    /// program) briefly shows an empty command line: it counts as running.
    static func isRunning(_ pid: pid_t, program: String) -> Bool {
        guard let command = commandLine(pid) else {
            return endings[pid] == nil && isAliveWithoutCommandLine(pid)
        }
        guard let first = command.first else { return true }
        let name = (program as NSString).lastPathComponent
        return first == program || (first as NSString).lastPathComponent == name
            || command.contains { ($0 as NSString).lastPathComponent == name }
    }

    /// A live, non-zombie pid whose command line cannot be read right now.
    static func isAliveWithoutCommandLine(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM,
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        // Fields after the command name: state, ppid, ... A kernel thread
        // (child of kthreadd, pid 2) has no command line either: not ours.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && fields[0] != "Z" && fields[1] != "2"
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; returns once it is gone.
    static func stop(_ pid: pid_t, program: String, grace: Double = 5) {
        guard isRunning(pid, program: program) else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline {
            if !isRunning(pid, program: program) { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        for _ in 0..<100 where isRunning(pid, program: program) { usleep(20_000) }
    }

    /// The last `lines` lines of a log file.
    static func tail(_ path: String, lines: Int = 15) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log at \(path))" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Whether something already listens on (or holds) the port on loopback.
    static func portInUse(_ port: Int, udp: Bool) -> Bool {
        let fd = socket(AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if !udp {
            // Listeners set SO_REUSEADDR too: connections left in TIME_WAIT
            // by a cluster that just stopped do not count as "in use".
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return rc != 0
    }

    /// Whether a TCP connection to the port succeeds.
    static func accepts(_ port: Int, host: String = "127.0.0.1") -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
