import FulvaCore
import HeapModule

/// Faults the network injects, per message.
public struct NetworkFaults: Hashable, Sendable {
    /// One-way delay, uniform in this range (nanoseconds).
    public var delay: ClosedRange<Int64> = 20_000...300_000
    /// Chance that a message is held back much longer (reordering).
    public var straggler: Double = 0.03
    public var stragglerDelay: ClosedRange<Int64> = 1_000_000...6_000_000
    public var loss: Double = 0.02
    public var duplicate: Double = 0.02
    public init() {}

    /// Many messages held back for milliseconds: replies of one round
    /// arrive on both sides of a phase change.
    public static let stragglers: NetworkFaults = {
        var f = NetworkFaults()
        f.straggler = 0.3
        f.stragglerDelay = 400_000...6_000_000
        return f
    }()

    /// The network of a seed: most runs lossy, some with many stragglers, some calm.
    public static func forSeed(_ seed: UInt64) -> NetworkFaults {
        switch (seed / 4) % 4 {
        case 0: return .stragglers
        case 1: return .calm
        default: return NetworkFaults()
        }
    }

    public static let calm: NetworkFaults = {
        var f = NetworkFaults()
        f.straggler = 0
        f.loss = 0
        f.duplicate = 0
        return f
    }()
}

/// The clock and the event queue of one simulated run. Everything happens
/// on one thread in timestamp order; ties break by insertion order.
final class World {
    struct Event: Comparable {
        let time: Int64
        let sequence: Int
        let action: () -> Void
        static func < (a: Event, b: Event) -> Bool { (a.time, a.sequence) < (b.time, b.sequence) }
        static func == (a: Event, b: Event) -> Bool { a.time == b.time && a.sequence == b.sequence }
    }

    private(set) var now: Int64 = 0
    private var queue = Heap<Event>()
    private var sequence = 0
    var random: SeededRandom
    let network: NetworkFaults
    private(set) var eventsRun = 0
    /// Ids for requests, so replies match the request they answer.
    private var nextRequestID: UInt64 = 1

    init(seed: UInt64, network: NetworkFaults) {
        self.random = SeededRandom(seed: seed)
        self.network = network
    }

    func after(_ delay: Int64, _ action: @escaping () -> Void) {
        sequence += 1
        queue.insert(Event(time: now + max(0, delay), sequence: sequence, action: action))
    }

    func requestID() -> UInt64 {
        defer { nextRequestID += 1 }
        return nextRequestID
    }

    /// Delivers `deliver` after a network delay, or never, or twice.
    func transmit(_ deliver: @escaping () -> Void) {
        if random.chance(network.loss) { return }
        let copies = random.chance(network.duplicate) ? 2 : 1
        for _ in 0..<copies {
            var delay = Int64.random(in: network.delay, using: &random)
            if random.chance(network.straggler) { delay += Int64.random(in: network.stragglerDelay, using: &random) }
            after(delay, deliver)
        }
    }

    /// Runs until nothing is left or the limits are hit; returns false when a limit stopped it.
    func run(until deadline: Int64, maxEvents: Int) -> Bool {
        while let event = queue.popMin() {
            if event.time > deadline || eventsRun >= maxEvents { return false }
            now = event.time
            eventsRun += 1
            event.action()
        }
        return true
    }
}

/// Deterministic 64-bit key hash for the simulation (RAMCloud uses
/// MurmurHash3; any well-mixed hash exercises the same code paths).
func simulatedKeyHash(tableID: UInt64, key: String) -> KeyHash {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ tableID
    for byte in key.utf8 {
        h ^= UInt64(byte)
        h &*= 0x100_0000_01b3
    }
    h ^= h >> 33
    h &*= 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    h &*= 0xc4ce_b9fe_1a85_ec53
    h ^= h >> 33
    return h
}
