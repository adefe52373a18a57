import Foundation

/// Where the patched RAMCloud build lives: `FULVA_RAMCLOUD_HOME`, or
/// `~/.cache/fulva/ramcloud` (what `scripts/build-ramcloud` installs).
public struct RAMCloudHome: Sendable {
    public let path: String

    public static var defaultPath: String {
        if let home = ProcessInfo.processInfo.environment["FULVA_RAMCLOUD_HOME"], !home.isEmpty { return home }
        return NSString(string: "~/.cache/fulva/ramcloud").expandingTildeInPath
    }

    public init(path: String = RAMCloudHome.defaultPath) {
        self.path = path
    }

    /// Fulva's server plugin (scripts/build-plugin): `FULVA_PLUGIN`, or
    /// `~/.cache/fulva/plugin/libFulvaPlugin.so`.
    public static var pluginPath: String {
        if let plugin = ProcessInfo.processInfo.environment["FULVA_PLUGIN"], !plugin.isEmpty { return plugin }
        return NSString(string: "~/.cache/fulva/plugin/libFulvaPlugin.so").expandingTildeInPath
    }

    public var plugin: String? {
        FileManager.default.fileExists(atPath: Self.pluginPath) ? Self.pluginPath : nil
    }

    public var coordinator: String { path + "/bin/coordinator" }
    public var server: String { path + "/bin/server" }
    public var library: String { path + "/lib/libramcloud.so" }
    public func app(_ name: String) -> String { path + "/bin/" + name }

    /// Whether the build has RAMCloud's DPDK driver (scripts/build-ramcloud
    /// records its make variables in BUILD-INFO).
    public var hasDPDK: Bool {
        guard let info = try? String(contentsOfFile: path + "/BUILD-INFO", encoding: .utf8) else { return false }
        return info.split(separator: "\n").contains { $0.hasPrefix("make:") && $0.contains("DPDK=yes") }
    }

    /// What is missing for running a cluster, or nil when the build is complete.
    public var missing: String? {
        let fm = FileManager.default
        for file in [coordinator, server, library] where !fm.isExecutableFile(atPath: file) && !fm.fileExists(atPath: file) {
            return "no patched RAMCloud build at \(path) (\(file) is missing); build it with scripts/build-ramcloud"
        }
        return nil
    }
}
