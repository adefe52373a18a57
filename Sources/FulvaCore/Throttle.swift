/// Keeps a migration's data transfer at or below a rate the operator set
/// (`rc-migrate start --throttle`, `rc-migrate throttle`): after each round
/// of pulls, the destination asks how long to pause. The rate may change
/// while the migration runs; the accounting then starts again from that
/// moment, so a new rate applies at once and an old debt is not carried.
public struct Throttle: Hashable, Sendable {
    /// 0: no limit.
    public private(set) var bytesPerSecond: UInt64
    /// The longest single pause: a paused migration still publishes its
    /// progress and sees a changed rate this often.
    public var longestPauseMicros: Int64 = 250_000

    private var sinceMicros: Int64
    private var bytesSince: UInt64 = 0

    public init(bytesPerSecond: UInt64, nowMicros: Int64) {
        self.bytesPerSecond = bytesPerSecond
        self.sinceMicros = nowMicros
    }

    /// Takes a new rate (0: none) from now on; the same rate changes nothing.
    public mutating func set(bytesPerSecond rate: UInt64, nowMicros: Int64) {
        guard rate != bytesPerSecond else { return }
        bytesPerSecond = rate
        sinceMicros = nowMicros
        bytesSince = 0
    }

    /// `bytes` more have moved; the pause, in microseconds, that keeps the
    /// transfer since the rate was set at or below it.
    public mutating func pause(afterMoving bytes: UInt64, nowMicros: Int64) -> Int64 {
        guard bytesPerSecond > 0 else { return 0 }
        bytesSince &+= bytes
        let due = Int64(min(Double(bytesSince) / Double(bytesPerSecond) * 1e6, Double(Int64.max / 2)))
        let ahead = sinceMicros + due - nowMicros
        return max(0, min(ahead, longestPauseMicros))
    }
}
