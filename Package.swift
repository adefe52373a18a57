// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Fulva",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FulvaCore", targets: ["FulvaCore"]),
        .library(name: "FulvaCheck", targets: ["FulvaCheck"]),
        .executable(name: "rc-migrate", targets: ["rc-migrate"]),
        .executable(name: "fulva-sim-report", targets: ["fulva-sim-report"]),
        .executable(name: "fulva-workload", targets: ["fulva-workload"]),
        // The plugin RAMCloud masters load (scripts/build-plugin builds it
        // with the Swift runtime linked in).
        .library(name: "FulvaPlugin", type: .dynamic, targets: ["FulvaPlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Pure protocol logic: imports no C and no Foundation.
        .target(name: "FulvaCore"),
        // Recorded histories and the linearizability checker.
        .target(name: "FulvaCheck"),
        // Deterministic simulation of a cluster running FulvaCore's state machines.
        .target(
            name: "FulvaSimulation",
            dependencies: [
                "FulvaCore", "FulvaCheck",
                .product(name: "HeapModule", package: "swift-collections"),
            ]),
        .executableTarget(
            name: "fulva-sim-report",
            dependencies: [
                "FulvaSimulation", "FulvaCheck", "FulvaCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // libramcloud's C API, loaded at run time (nothing links RAMCloud).
        // fulva.h, the one C ABI between RAMCloud and Swift.
        .target(name: "CFulva", path: "CShims/CFulva"),
        .target(name: "CRAMCloud", dependencies: ["CFulva"], path: "CShims/CRAMCloud",
                linkerSettings: [.linkedLibrary("dl")]),
        // Fulva's client rules carried out over direct requests to servers.
        .target(name: "FulvaClient", dependencies: ["CFulva", "FulvaCore"]),
        .target(name: "FulvaRAMCloud", dependencies: ["CRAMCloud", "CFulva", "FulvaCore", "FulvaClient"]),
        // Local clusters: ZooKeeper, coordinator, masters.
        .target(name: "FulvaCluster", dependencies: ["FulvaRAMCloud"]),
        // The migration benchmark's figures and report (rc-migrate bench).
        .target(name: "FulvaBench", dependencies: ["FulvaCheck", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        // Migration metrics through swift-metrics (rc-migrate metrics
        // exports them for Prometheus).
        .target(name: "FulvaMetrics", dependencies: ["FulvaCore", .product(name: "CoreMetrics", package: "swift-metrics")]),
        .executableTarget(
            name: "rc-migrate",
            dependencies: [
                "FulvaCore", "FulvaCluster", "FulvaRAMCloud", "FulvaZooKeeper", "FulvaBench", "FulvaMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        // Migration records in ZooKeeper (libzookeeper_mt, Debian's libzookeeper-mt-dev).
        .target(name: "CZooKeeper", path: "CShims/CZooKeeper", linkerSettings: [.linkedLibrary("zookeeper_mt")]),
        .target(name: "FulvaZooKeeper", dependencies: ["CZooKeeper", "FulvaCore"]),
        // Fulva's migration manager in a master, over a host interface.
        .target(name: "FulvaServer", dependencies: ["FulvaCore"]),
        // fulva.h exports: the migration manager (FulvaServer) that masters
        // load, and the client shim (FulvaClient) that libramcloud loads.
        // Loaded with RTLD_NODELETE by the host; -z nodelete as well, since
        // unloading after Swift started threads crashes the host.
        .target(
            name: "FulvaPlugin",
            dependencies: ["CFulva", "FulvaCore", "FulvaClient", "FulvaServer", "FulvaZooKeeper"],
            linkerSettings: [.unsafeFlags(["-Xlinker", "-z", "-Xlinker", "nodelete",
                                           "-Xlinker", "-soname=libFulvaPlugin.so"])]),
        // Client load: fill, mixed workload checked against its own writes, migrate, counters.
        .executableTarget(
            name: "fulva-workload",
            dependencies: [
                "FulvaCheck", "FulvaCore", "FulvaRAMCloud",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        .testTarget(name: "FulvaCoreTests", dependencies: ["FulvaCore"]),
        .testTarget(name: "FulvaServerTests", dependencies: ["FulvaServer", "FulvaCore"]),
        .testTarget(name: "FulvaZooKeeperTests", dependencies: ["FulvaZooKeeper", "FulvaServer", "FulvaCore"]),
        .testTarget(name: "FulvaCheckTests", dependencies: ["FulvaCheck", "FulvaCore"]),
        .testTarget(name: "FulvaBenchTests", dependencies: ["FulvaBench"]),
        .testTarget(name: "FulvaMetricsTests", dependencies: ["FulvaMetrics", "FulvaCore",
                                                            .product(name: "Prometheus", package: "swift-prometheus")]),
        .testTarget(name: "FulvaSimulationTests", dependencies: ["FulvaSimulation", "FulvaCheck", "FulvaCore"]),
        // Against a patched RAMCloud build; skipped, saying so, without one.
        .testTarget(name: "ClusterIntegrationTests",
                    dependencies: ["FulvaCluster", "FulvaRAMCloud", "FulvaClient", "FulvaZooKeeper", "FulvaCheck",
                                   "fulva-workload",
                                   .product(name: "Atomics", package: "swift-atomics")]),
    ]
)
