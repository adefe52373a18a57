/// One pull: a contiguous bucket range of one partition of the source's hash
/// table. The source answers with the tablet's live entries in those buckets,
/// up to a byte budget, cut only at a bucket boundary.
public struct PullBatch: Hashable, Sendable, CustomStringConvertible {
    public var partition: Int
    public var buckets: Range<UInt64>
    public init(partition: Int, buckets: Range<UInt64>) {
        self.partition = partition
        self.buckets = buckets
    }
    public var description: String { "p\(partition)[\(buckets.lowerBound),\(buckets.upperBound))" }
}

/// Which batches the destination pulls next, and how far each partition's
/// watermark may move. Batches are pulled in parallel across partitions and
/// pipelined within one; replies and replays may come in any order, and a
/// watermark moves only over a gap-free prefix of replayed batches.
public struct PullSchedule: Hashable, Sendable {
    public enum BatchState: Hashable, Sendable { case pending, inFlight, received, replayed }

    struct Partition: Hashable, Sendable {
        /// Batches keyed and ordered by first bucket; together they tile the partition.
        var starts: [UInt64]
        var batches: [UInt64: (end: UInt64, state: BatchState)]
        var inFlight: Int

        static func == (a: Partition, b: Partition) -> Bool {
            a.starts == b.starts && a.inFlight == b.inFlight
                && a.starts.allSatisfy { a.batches[$0]!.end == b.batches[$0]?.end && a.batches[$0]!.state == b.batches[$0]?.state }
        }
        func hash(into h: inout Hasher) { h.combine(starts); h.combine(inFlight) }
    }

    public let layout: HashTableLayout
    public let bucketsPerBatch: UInt64
    public let pipelineDepth: Int
    public private(set) var watermarks: Watermarks
    var partitions: [Partition]
    let faults: ProtocolFaults

    public init(layout: HashTableLayout, bucketsPerBatch: UInt64, pipelineDepth: Int,
                faults: ProtocolFaults = .none) {
        self.layout = layout
        self.bucketsPerBatch = max(1, bucketsPerBatch)
        self.pipelineDepth = max(1, pipelineDepth)
        self.watermarks = Watermarks(layout: layout)
        self.faults = faults
        self.partitions = (0..<layout.partitionCount).map { p in
            let range = layout.buckets(ofPartition: p)
            var starts: [UInt64] = []
            var batches: [UInt64: (end: UInt64, state: BatchState)] = [:]
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(range.upperBound, start + max(1, bucketsPerBatch))
                starts.append(start)
                batches[start] = (end, .pending)
                start = end
            }
            return Partition(starts: starts, batches: batches, inFlight: 0)
        }
    }

    /// Batches to send now: the earliest pending ones of each partition, up
    /// to the pipeline depth, taken round-robin so partitions move together.
    public mutating func nextPulls(limit: Int = .max) -> [PullBatch] {
        var out: [PullBatch] = []
        var progressed = true
        while progressed && out.count < limit {
            progressed = false
            for p in partitions.indices where out.count < limit {
                guard partitions[p].inFlight < pipelineDepth,
                      let start = partitions[p].starts.first(where: { partitions[p].batches[$0]!.state == .pending })
                else { continue }
                partitions[p].batches[start]!.state = .inFlight
                partitions[p].inFlight += 1
                out.append(PullBatch(partition: p, buckets: start..<partitions[p].batches[start]!.end))
                progressed = true
            }
        }
        return out
    }

    public func state(of batch: PullBatch) -> BatchState? {
        guard batch.partition >= 0, batch.partition < partitions.count,
              let b = partitions[batch.partition].batches[batch.buckets.lowerBound],
              b.end == batch.buckets.upperBound else { return nil }
        return b.state
    }

    /// The source answered `batch` with entries up to `resumeAt` (exclusive)
    /// when it ran out of byte budget; the rest becomes a new pending batch.
    /// Returns false for a reply that is stale or duplicated: drop its data.
    @discardableResult
    public mutating func received(_ batch: PullBatch, resumeAt: UInt64? = nil) -> Bool {
        guard state(of: batch) == .inFlight else { return false }
        let p = batch.partition, start = batch.buckets.lowerBound
        partitions[p].inFlight -= 1
        if let resume = resumeAt, resume > start, resume < batch.buckets.upperBound {
            partitions[p].batches[start] = (resume, .received)
            partitions[p].batches[resume] = (batch.buckets.upperBound, .pending)
            let i = partitions[p].starts.firstIndex(of: start)!
            partitions[p].starts.insert(resume, at: i + 1)
        } else {
            partitions[p].batches[start]!.state = .received
        }
        if faults.contains(.watermarkOnReceipt) { advance(partition: p, over: [.received, .replayed]) }
        return true
    }

    /// The received range of `batch` (as cut by `received`) is now in the
    /// destination's hash table.
    public mutating func replayed(_ batch: PullBatch) {
        let p = batch.partition, start = batch.buckets.lowerBound
        guard p >= 0, p < partitions.count, partitions[p].batches[start]?.state == .received else { return }
        partitions[p].batches[start]!.state = .replayed
        advance(partition: p, over: [.replayed])
    }

    /// The pull got no answer: send it again later.
    public mutating func failed(_ batch: PullBatch) {
        guard state(of: batch) == .inFlight else { return }
        partitions[batch.partition].inFlight -= 1
        partitions[batch.partition].batches[batch.buckets.lowerBound]!.state = .pending
    }

    /// The range a received batch now covers (a cut reply shortens it).
    public func receivedRange(startingAt start: UInt64, partition p: Int) -> Range<UInt64>? {
        guard let b = partitions[p].batches[start] else { return nil }
        return start..<b.end
    }

    public var isComplete: Bool { watermarks.isComplete }

    public var inFlightCount: Int { partitions.reduce(0) { $0 + $1.inFlight } }

    private mutating func advance(partition p: Int, over states: Set<BatchState>) {
        var mark = watermarks.buckets[p]
        while let b = partitions[p].batches[mark], states.contains(b.state) { mark = b.end }
        watermarks.raise(partition: p, to: mark)
    }
}
